import { PassThrough } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Filter } from './filter/filter.js'
import { FilterChain, type ChainOwner, type ChainSink } from './filter/filter-chain.js'
import { addForwardingHeaders, headersFromRaw, headerTokens, hopByHopResponse, type Headers } from './headers.js'
import { chooseCluster, rewriteHost, rewritePath } from './route-action.js'
import type { RouteState, SwitchyardCore } from './core.js'
import type { Cluster, Endpoint } from './cluster.js'
import type { ReplyFrom } from './reply-from-engine.js'
import type { Dispatcher } from 'undici'
import { SwyNoHealthyUpstreamError, SwyUpstreamProtocolError } from './errors.js'

const EMPTY = Buffer.alloc(0)
const hopByHopRequest = ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'http2-settings']
const connectFailures = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'EAI_AGAIN'])
const resets = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE'])

interface UpstreamResponse { statusCode: number, headers: Record<string, string | string[] | undefined>, stream: NodeJS.ReadableStream }

/** What the plain-request path needs from the plugin instance. */
export interface PlainEngine {
  from: ReplyFrom
  dispatcher: Dispatcher
}

/**
 * A plain request on a route with `upstream`: headers and body through the filter chain, sent by
 * `@fastify/reply-from`, the response back through the chain (Envoy's router for non-upgrade streams).
 */
export class PlainStream implements ChainOwner {
  readonly chain: FilterChain
  readonly #core: SwitchyardCore
  readonly #engines: Map<string, PlainEngine>
  readonly #route: RouteState
  readonly #request: FastifyRequest
  readonly #reply: FastifyReply
  #headers: Headers | undefined
  #body: Buffer[] = []
  #sent = false
  #out: PassThrough | undefined
  #attempt = 0
  #cluster = ''
  #done = false
  #requestEnded = false

  constructor (core: SwitchyardCore, engines: Map<string, PlainEngine>, route: RouteState, request: FastifyRequest, reply: FastifyReply, filters: readonly Filter[]) {
    this.#core = core
    this.#engines = engines
    this.#route = route
    this.#request = request
    this.#reply = reply
    this.chain = new FilterChain({
      filters,
      upgradeType: null,
      route: { url: route.url, method: route.method },
      request,
      log: request.log,
      owner: this,
      upstreamSink: this.#routerSink,
      downstreamSink: this.#downstreamSink,
      highWaterMark: core.highWaterMark
    })
    reply.raw.once('close', () => this.#close())
  }

  start (): void {
    const raw = this.#request.raw
    const headers = headersFromRaw(raw.rawHeaders)
    for (const token of headerTokens(headers.connection)) delete headers[token]
    for (const key of hopByHopRequest) delete headers[key]
    if (raw.httpVersionMajor === 2) for (const key in headers) if (key.startsWith(':')) delete headers[key]
    addForwardingHeaders(headers, raw.socket?.remoteAddress, this.#request.protocol === 'https' ? 'https' : 'http')
    const body = bodyBytes(this.#request.body)
    // Fastify reads no body for GET, HEAD, DELETE and the like; Envoy still sends one through the chain.
    const unread = body === undefined && hasUnreadBody(raw)
    this.chain.requestHeaders(headers, body === undefined && !unread)
    if (body !== undefined && !this.chain.closed) this.chain.requestData(body, true)
    if (unread) this.#readBody()
    else this.#requestEnded = true
  }

  /** Streams a body Fastify left unread through the chain, within the route's `bodyLimit` (413 beyond it). */
  #readBody (): void {
    const raw = this.#request.raw
    const limit = this.#request.routeOptions.bodyLimit ?? DEFAULT_BODY_LIMIT
    let seen = 0
    raw.on('data', (chunk: Buffer) => {
      if (this.#done || this.chain.closed) return
      seen += chunk.length
      if (seen > limit) {
        raw.pause()
        this.localReply(this.chain.filters.length, 413, undefined, {})
        return
      }
      if (!this.chain.requestData(chunk, false)) raw.pause()
    })
    raw.once('end', () => {
      this.#requestEnded = true
      if (!this.#done && !this.chain.closed) this.chain.requestData(EMPTY, true)
    })
    raw.on('error', (err: Error) => this.abort(err))
  }

  #routerSink: ChainSink = {
    headers: (_status, headers, endStream) => {
      this.#headers = headers
      if (endStream) this.#send()
    },
    data: (chunk, end) => {
      if (chunk.length > 0) this.#body.push(chunk)
      if (end) this.#send()
      return true
    }
  }

  #send (): void {
    if (this.#sent || this.#done) return
    this.#sent = true
    const upstream = this.#route.upstream!
    const core = this.#core
    const name = chooseCluster(upstream, core.runtime)
    const cluster = name === undefined ? undefined : core.clusters.get(name)
    if (cluster === undefined) {
      this.#fail(new SwyNoHealthyUpstreamError(name ?? '(none)'))
      return
    }
    this.#cluster = cluster.name
    const endpoint = cluster.pick()
    const headers = this.#headers!
    delete headers['content-length']
    if (upstream.hostRewrite === undefined && upstream.autoHostRewrite !== true) {
      // reply-from sets Host to the endpoint; Envoy keeps the client's unless told to rewrite.
      headers.host = this.#request.headers.host ?? endpoint.authority
    } else {
      rewriteHost(headers, upstream, endpoint)
    }
    const path = rewritePath(this.#request.raw.url ?? '/', this.#route.prefix, upstream.prefixRewrite)
    const body = this.#body.length === 0 ? undefined : Buffer.concat(this.#body)
    core.stats.cluster(cluster.name, 'upstream_rq_total')
    this.#mirror(path, headers, body)

    this.#try(cluster, endpoint, path, headers, body)
  }

  /**
   * One attempt on one endpoint. A retry (on `retries.retryOn`) goes to the cluster's next endpoint, as
   * Envoy's retries pick a new host, after Envoy's default back-off (25 ms base, doubled per attempt).
   */
  #try (cluster: Cluster, endpoint: Endpoint, path: string, headers: Headers, body: Buffer | undefined): void {
    const upstream = this.#route.upstream!
    const retries = upstream.retries
    const retryOn: string[] = retries?.retryOn ?? ['connect-failure', 'reset', '5xx']
    const retry = (kind: string | null): boolean => {
      if (retries === undefined || kind === null || this.#attempt >= retries.numRetries || !retryOn.includes(kind)) return false
      if (this.#done || this.#reply.raw.destroyed) return false
      this.#attempt++
      this.#core.stats.cluster(cluster.name, 'upstream_rq_retry')
      const next = cluster.pick()
      const h = { ...headers }
      if (upstream.autoHostRewrite === true) rewriteHost(h, upstream, next)
      setTimeout(() => this.#try(cluster, next, path, h, body), 25 * 2 ** (this.#attempt - 1)).unref()
      return true
    }
    const opts: Record<string, unknown> = {
      rewriteRequestHeaders: () => ({ ...headers }),
      rewriteHeaders: () => ({}),
      // reply-from would retry GET 503s by itself; only the route's `retries` decide here.
      retryDelay: () => null,
      onResponse: (_req: FastifyRequest, _reply: FastifyReply, res: UpstreamResponse) => {
        if (res.statusCode >= 500 && retry('5xx')) { (res.stream as { destroy?: () => void }).destroy?.(); return }
        this.#onResponse(res)
      },
      onError: (_reply: FastifyReply, { error }: { error: Error & { statusCode?: number, cause?: { code?: string } } }) => {
        const code = error.cause?.code
        const kind = code === undefined ? null : connectFailures.has(code) ? 'connect-failure' : resets.has(code) ? 'reset' : null
        if (kind === 'connect-failure') this.#core.stats.cluster(cluster.name, 'upstream_cx_connect_fail')
        if (retry(kind)) return
        this.#onError(error)
      }
    }
    if (upstream.timeout !== undefined && upstream.timeout > 0) opts.timeout = upstream.timeout
    // @fastify/reply-from sends no body with GET or HEAD (it throws): such a body has been through the chain
    // (a filter may refuse it) but goes no further. Every other method carries it.
    const method = this.#request.raw.method ?? 'GET'
    if (body !== undefined && method !== 'GET' && method !== 'HEAD') {
      opts.body = body
      opts.contentType = firstOf(this.#request.headers['content-type']) ?? 'application/octet-stream'
    }
    try {
      this.#engines.get(cluster.name)!.from.call(this.#reply, `${endpoint.origin}${path}`, opts)
    } catch (err) {
      // Never let the engine's own refusal escape into the socket's event handler.
      this.#fail(err as Error)
    }
  }

  /** Envoy's request mirroring: a fire-and-forget copy, Host suffixed with `-shadow`. */
  #mirror (path: string, headers: Headers, body: Buffer | undefined): void {
    const mirror = this.#route.upstream?.mirror
    if (mirror === undefined || Math.random() * 100 >= (mirror.percent ?? 100)) return
    const cluster = this.#core.clusters.get(mirror.cluster)
    if (cluster === undefined) return
    const endpoint = cluster.pick()
    this.#core.stats.cluster(cluster.name, 'upstream_rq_total')
    const host = firstOf(headers.host) ?? endpoint.authority
    this.#engines.get(cluster.name)!.dispatcher.request({
      origin: endpoint.origin,
      path,
      method: (this.#request.raw.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: { ...headers, host: `${host}-shadow` },
      body
    }).then((res) => res.body.dump(), () => this.#core.stats.cluster(cluster.name, 'upstream_rq_mirror_failed'))
  }

  #onResponse (res: UpstreamResponse): void {
    if (this.#attempt > 0) this.#core.stats.cluster(this.#cluster, 'upstream_rq_retry_success')
    const headers: Headers = {}
    for (const key in res.headers) {
      const v = res.headers[key]
      if (v !== undefined && !hopByHopResponse.has(key)) headers[key] = v
    }
    // A filter that reads response data may change its length: let Node frame the body (chunked) instead.
    if (!this.chain.responseDataPassthrough) delete headers['content-length']
    const stream = res.stream
    this.chain.responseHeaders(res.statusCode, headers, false)
    stream.on('data', (chunk: Buffer) => {
      if (!this.chain.responseData(chunk, false)) stream.pause()
    })
    stream.on('end', () => this.chain.responseData(EMPTY, true))
    stream.on('error', (err: Error) => this.abort(err))
    this.#resumeUpstream = () => stream.resume()
  }

  #resumeUpstream: () => void = () => {}

  #onError (error: Error & { statusCode?: number, cause?: { code?: string } }): void {
    const code = error.cause?.code
    let status = error.statusCode ?? 502
    if (code !== undefined && (connectFailures.has(code) || resets.has(code))) status = 503
    if (status === 504) this.#core.stats.cluster(this.#cluster, 'upstream_rq_timeout')
    this.#request.log.warn({ err: error }, 'upstream request failed')
    this.localReply(this.chain.filters.length, status, undefined, {})
  }

  #downstreamSink: ChainSink = {
    headers: (status, headers) => {
      const reply = this.#reply
      reply.code(status)
      for (const key in headers) reply.header(key, headers[key])
      this.#out = new PassThrough()
      this.#out.on('drain', () => this.#resumeUpstream())
      reply.send(this.#out)
    },
    data: (chunk, end) => {
      const out = this.#out
      if (out === undefined) return true
      if (end) { out.end(chunk.length > 0 ? chunk : undefined); return true }
      return out.write(chunk)
    }
  }

  localReply (fromFilter: number, status: number, body: Buffer | undefined, headers: Record<string, string>): void {
    if (this.#done) return
    const reply = this.#reply
    if (reply.sent || this.#out !== undefined) {
      this.abort(new SwyUpstreamProtocolError(this.#cluster, 'local reply after the response started'))
      return
    }
    this.#done = true
    const h: Headers = {}
    for (const key in headers) h[key.toLowerCase()] = headers[key]!
    const payload = this.chain.localResponse(fromFilter, status, h, body ?? EMPTY)
    reply.code(status)
    for (const key in h) reply.header(key, h[key])
    // Answered before the request was read to its end: the rest cannot be trusted to frame a next request,
    // so the HTTP/1.1 connection closes after this answer (as Envoy's codec does).
    if (!this.#requestEnded && this.#request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
    reply.send(payload)
  }

  #fail (err: Error & { statusCode?: number }): void {
    this.#request.log.warn({ err }, 'cannot proxy request')
    this.localReply(this.chain.filters.length, err.statusCode ?? 502, undefined, {})
  }

  abort (error: Error): void {
    this.#request.log.warn({ err: error }, 'stream aborted')
    this.#out?.destroy(error)
    this.#reply.raw.destroy()
    this.#close(error)
  }

  pause (): void {}
  resume (): void {}
  drained (direction: 'request' | 'response'): void {
    if (direction === 'request') this.#request.raw.resume()
    else this.#resumeUpstream()
  }

  #close (error?: Error): void {
    this.chain.close(error)
  }
}

/** Fastify's default `bodyLimit`. */
const DEFAULT_BODY_LIMIT = 1024 * 1024

/** A request body the client declared and nobody has read yet. */
function hasUnreadBody (raw: FastifyRequest['raw']): boolean {
  if (raw.readableEnded || (raw as { readableDidRead?: boolean }).readableDidRead === true) return false
  const length = raw.headers['content-length']
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) > 0)
}

function bodyBytes (body: unknown): Buffer | undefined {
  if (body === undefined || body === null) return undefined
  if (Buffer.isBuffer(body)) return body.length === 0 ? undefined : body
  if (typeof body === 'string') return body.length === 0 ? undefined : Buffer.from(body)
  return Buffer.from(JSON.stringify(body))
}

function firstOf (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}
