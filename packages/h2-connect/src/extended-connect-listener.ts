import { Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import type { Duplex } from 'node:stream'
import { h2ConnectChannel, writeRefusal, type AppState } from '@switchyard/core/internal'
import { fromExtendedConnect, METHOD_CARRIER } from './connect-headers.js'
import { Http2Downstream, stopClient } from './http2-downstream.js'
import type { GeneratedKeys } from './websocket-key.js'
import { SwyH2PlainConnectError } from './errors.js'

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
 * upgrade routed through Fastify like one from the `'upgrade'` event, so one route serves both.
 */
export function createConnectListener (core: AppState, options: ExtendedConnectOptions) {
  return function onConnect (req: Http2ServerRequest | { socket: unknown }, resOrSocket: Http2ServerResponse | Duplex): void {
    if (!(req instanceof Http2ServerRequest)) {
      // An HTTP/1.1 CONNECT on an `allowHTTP1` server: never tunnelled here (Node would drop it).
      writeRefusal(resOrSocket as Duplex, 403)
      return
    }
    const res = resOrSocket as Http2ServerResponse
    const stream = req.stream
    const headers = req.headers
    const protocol = typeof headers[':protocol'] === 'string' ? headers[':protocol'] : undefined
    const authority = headers[':authority'] ?? headers.host
    if (extendedConnectChannel.hasSubscribers) {
      extendedConnectChannel.publish({ protocol: protocol ?? null, authority, path: headers[':path'], method: headers[':method'] })
    }
    if (core.closing) {
      res.statusCode = 503
      res.end()
      stopClient(stream)
      return
    }
    // A plain CONNECT is the upgrade type `CONNECT` (Envoy), off unless the plugin's upgradeConfigs enable it.
    if (protocol === undefined && core.upgradeConfigs.get('connect')?.enabled !== true) {
      const err = new SwyH2PlainConnectError(String(authority))
      core.log.debug({ code: err.code, authority }, err.message)
      // Counted as Envoy counts any refused upgrade type (and as the HTTP/1.1 CONNECT refusal is).
      core.stats.inc('downstream_rq_ws_on_non_ws_route')
      res.statusCode = 403
      res.end()
      stopClient(stream)
      return
    }

    const carried = headers[METHOD_CARRIER]
    // The carrier is honoured only with preserveMethod, on an extended CONNECT, when it is a method token.
    const method = options.preserveMethod && protocol !== undefined && typeof carried === 'string' && METHOD_TOKEN.test(carried)
      ? carried.toUpperCase()
      : 'GET'
    const down = fromExtendedConnect(req.rawHeaders, protocol ?? 'CONNECT', authority, method)
    // Core's `maxRequestHeaders` (Envoy's max_request_headers_count), counted on the HTTP/1.1-shaped request
    // as on the front: the 'upgrade' listener that checks it never sees an extended CONNECT.
    if (down.rawHeaders.length / 2 > core.maxRequestHeaders) {
      res.statusCode = 431
      res.end()
      stopClient(stream)
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
    headers.upgrade = protocol ?? 'CONNECT'
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

    stream.on('error', noop)
    const downstream = new Http2Downstream(stream)
    // An answer that is not a tunnel (a hook's 401, a 403, a 404) ends the exchange: the client stops sending.
    stream.once('finish', () => { if (!downstream.accepted) stopClient(stream) })
    core.routeUpgrade(req, res, { downstream, upgradeType: down.upgradeType })
  }
}

function noop (): void {}
