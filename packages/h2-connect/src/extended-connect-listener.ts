import { constants, Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Stream } from 'node:http2'
import type { Duplex } from 'node:stream'
import { h2ConnectChannel, http2AuthorityProblem, invalidAuthority, parseConnectTarget, type AppState } from '@switchyard/core/internal'
import { fromExtendedConnect, fromPlainConnect, METHOD_CARRIER } from './connect-headers.js'
import { Http2Downstream, stopClient } from './http2-downstream.js'
import type { GeneratedKeys } from './websocket-key.js'

/** Published for every CONNECT stream received: `{ protocol, authority, path, method }` (`protocol` null for a plain CONNECT). */
export const extendedConnectChannel = h2ConnectChannel

/** An RFC 9110 method token, as the carrier header may hold it. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

export interface ExtendedConnectOptions {
  preserveMethod: boolean
  keys: GeneratedKeys
}

/**
 * The server's `'connect'` listener (Node emits it for every HTTP/2 CONNECT once Fastify listens to
 * `'request'`, and answers 405 when nobody listens). An extended CONNECT becomes an HTTP/1.1-shaped
 * upgrade routed through Fastify like one from the `'upgrade'` event, so one route serves both; a plain
 * CONNECT (RFC 9113 §8.5, no `:protocol`) becomes a CONNECT routed on `/host:port`, as core routes an
 * HTTP/1.1 one. An HTTP/1.1 CONNECT on an `allowHTTP1` server is core's own.
 */
export function createConnectListener (core: AppState, options: ExtendedConnectOptions) {
  const onConnect = function onConnect (req: Http2ServerRequest | { socket: unknown }, resOrSocket: Http2ServerResponse | Duplex): void {
    if (!(req instanceof Http2ServerRequest)) return
    const res = resOrSocket as Http2ServerResponse
    const stream = req.stream
    const headers = req.headers
    const protocol = typeof headers[':protocol'] === 'string' ? headers[':protocol'] : undefined
    const authority = headers[':authority'] ?? headers.host
    if (extendedConnectChannel.hasSubscribers) {
      extendedConnectChannel.publish({ protocol: protocol ?? null, authority, path: headers[':path'], method: headers[':method'] })
    }
    // RFC 9113 §8.3.1: a malformed `:authority` (userinfo, a stray bracket, too long) is a stream error; it
    // would become the Host of the app's request. nghttp2 checks its characters only.
    const authorityProblem = http2AuthorityProblem(headers)
    if (authorityProblem !== null) {
      invalidAuthority(core, authority, authorityProblem)
      stream.close(constants.NGHTTP2_PROTOCOL_ERROR)
      return
    }
    if (core.closing) {
      core.stats.inc('downstream_rq_drain_refused')
      answer(res, stream, 503)
      return
    }
    if (protocol === undefined) {
      plainConnect(core, req, res, authority)
      return
    }

    const carried = headers[METHOD_CARRIER]
    // The carrier is honoured only with preserveMethod, on an extended CONNECT, when it is a method token.
    const method = options.preserveMethod && typeof carried === 'string' && METHOD_TOKEN.test(carried)
      ? carried.toUpperCase()
      : 'GET'
    const down = fromExtendedConnect(req.rawHeaders, protocol, authority, method)
    // Core's `maxRequestHeaders` (Envoy's max_request_headers_count), counted on the HTTP/1.1-shaped request
    // as on the front: the 'upgrade' listener that checks it never sees an extended CONNECT.
    if (down.rawHeaders.length / 2 > core.maxRequestHeaders) {
      answer(res, stream, 431)
      return
    }

    // Shape the request in place (Fastify and core read `headers`, `rawHeaders`, `method`, `url`).
    const raw = req.rawHeaders
    raw.length = 0
    raw.push(...down.rawHeaders)
    headers[':method'] = method
    headers[':path'] ??= '/'
    delete headers[':protocol']
    delete headers[METHOD_CARRIER]
    if (authority !== undefined) headers.host = authority
    headers.upgrade = protocol
    headers.connection = 'upgrade'
    // What follows the head is tunnel payload: Fastify must never read it as a body.
    delete headers['content-length']
    delete headers['content-type']

    // Envoy: downstream H2 + upstream H1 + no client key → a generated key, its accept checked upstream.
    if (down.upgradeType === 'websocket' && headers['sec-websocket-key'] === undefined) {
      const key = options.keys.generate()
      raw.push('sec-websocket-key', key)
      headers['sec-websocket-key'] = key
      stream.once('close', () => options.keys.release(key))
    }
    route(core, req, res, down.upgradeType, undefined)
  }
  return onConnect
}

/**
 * A plain CONNECT: `:method` and `:authority` only (RFC 9113 §8.5; nghttp2 resets one that also carries
 * `:scheme` or `:path` with PROTOCOL_ERROR before it gets here). The authority must be `host:port`, and a
 * CONNECT announces no content (RFC 9110 §9.3.6): 400 otherwise. DATA frames are the tunnel's payload.
 */
function plainConnect (core: AppState, req: Http2ServerRequest, res: Http2ServerResponse, authority: string | undefined): void {
  const stream = req.stream
  const headers = req.headers
  if (headers[':path'] !== undefined || headers[':scheme'] !== undefined) {
    stream.close(constants.NGHTTP2_PROTOCOL_ERROR)
    return
  }
  const target = parseConnectTarget(authority)
  const length = headers['content-length']
  if ('problem' in target || (length !== undefined && length !== '0')) {
    core.log.debug({ authority, problem: 'problem' in target ? target.problem : 'content-length' }, 'HTTP/2 CONNECT refused: 400')
    answer(res, stream, 400)
    return
  }
  const raw = fromPlainConnect(req.rawHeaders, target.authority)
  if (raw.length / 2 > core.maxRequestHeaders) {
    answer(res, stream, 431)
    return
  }
  req.rawHeaders.length = 0
  req.rawHeaders.push(...raw)
  headers[':path'] = `/${target.authority}`
  headers.host = target.authority
  delete headers['content-length']
  delete headers['content-type']
  route(core, req, res, 'connect', target.authority)
}

/** Hands the shaped request to core's router as an upgrade whose downstream is the HTTP/2 stream. */
function route (core: AppState, req: Http2ServerRequest, res: Http2ServerResponse, upgradeType: string, authority: string | undefined): void {
  const stream = req.stream
  stream.on('error', noop)
  const downstream = new Http2Downstream(stream)
  // An answer that is not a tunnel (a hook's 401, a 403, a 404) ends the exchange: the client stops sending.
  stream.once('finish', () => { if (!downstream.accepted) stopClient(stream) })
  core.routeUpgrade(req, res, authority === undefined ? { downstream, upgradeType } : { downstream, upgradeType, authority })
}

/** A refusal before routing: the status, an empty body, and the client told to stop sending. */
function answer (res: Http2ServerResponse, stream: ServerHttp2Stream, status: number): void {
  res.statusCode = status
  res.end()
  stopClient(stream)
}

function noop (): void {}
