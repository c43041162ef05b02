import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { PassThrough, type Readable } from 'node:stream'
import type { Filter } from './filter/filter.js'
import { FilterChain, type ChainOwner, type ChainSink } from './filter/filter-chain.js'
import { addForwardingHeaders, firstValue, headersFromRaw, headerTokens, hopByHopRequest, hopByHopResponse, type Headers } from './headers.js'
import { rewriteHost, rewritePath } from './route-action.js'
import type { AppState } from './app-state.js'
import type { RouteState } from './route-state.js'
import type { Cluster } from './cluster/cluster.js'
import type { Host } from './cluster/host.js'
import { hashInputOf, Router, type Attempt, type AttemptEvents, type RouterFailure } from './router/router.js'
import { routeTimeout } from './router/retry-policy.js'
import { RequestBody, RETRY_BUFFER_LIMIT } from './request-body.js'
import { SwyUpstreamProtocolError } from './errors.js'
import { timeoutBody } from './stream-timeouts.js'

const EMPTY = Buffer.alloc(0)
/** undici error codes of a connection that could not be made. */
const connectFailures = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'EAI_AGAIN'])

/**
 * A plain request on a route with `upstream` (Envoy's router for non-upgrade streams): headers and body
 * through the filter chain, sent by the cluster's undici agent, the response back through the chain.
 * The request goes upstream as soon as its headers have passed the filters, its body streamed behind
 * them (never read whole). Reading pauses in either direction when the far side is full, or while a
 * filter holds the stream.
 */
export class PlainStream implements ChainOwner {
  readonly chain: FilterChain
  readonly #app: AppState
  readonly #route: RouteState
  readonly #request: FastifyRequest
  readonly #reply: FastifyReply
  readonly #router: Router
  #headers: Headers | undefined
  /** The body on its way upstream; undefined when the request has none. */
  #body: RequestBody | undefined
  /** The body came parsed by Fastify (a handler that wraps `proxy`): its bytes are a re-serialisation. */
  #parsedBody = false
  #sent = false
  #out: PassThrough | undefined
  #upstreamBody: Readable | undefined
  #done = false
  #requestEnded = false
  #holds = 0

  constructor (app: AppState, route: RouteState, request: FastifyRequest, reply: FastifyReply, filters: readonly Filter[]) {
    this.#app = app
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
      highWaterMark: app.highWaterMark
    })
    this.#router = new Router({
      app,
      upstream: route.upstream!,
      timeout: routeTimeout(route.upstream),
      // Plain requests share the agent's keep-alive connections (multiplexed on HTTP/2): the connection
      // breaker is the agent's per-origin cap, not a connection per attempt.
      connectionPerAttempt: false,
      log: request.log,
      owner: this,
      hashOf: route.hashOf,
      hashInput: () => hashInputOf(request)
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
    this.#parsedBody = body !== undefined
    const unread = body === undefined && hasUnreadBody(raw)
    // A declared length over the route's own bodyLimit is refused before anything is sent upstream.
    const limit = this.#route.bodyLimit
    const declared = Number(raw.headers['content-length'])
    if (unread && limit !== undefined && declared > limit) {
      this.#requestEnded = false
      this.localReply(this.chain.filters.length, 413, undefined, {})
      return
    }
    this.chain.requestHeaders(headers, body === undefined && !unread)
    if (body !== undefined && !this.chain.closed) this.chain.requestData(body, true)
    if (unread) this.#readBody(limit)
    else this.#requestEnded = true
  }

  /** Streams the raw body through the chain; past the route's own `bodyLimit` (when it has one), 413. */
  #readBody (limit: number | undefined): void {
    const raw = this.#request.raw
    let seen = 0
    raw.on('data', (chunk: Buffer) => {
      if (this.#done || this.chain.closed) return
      seen += chunk.length
      if (limit !== undefined && seen > limit) {
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
      if (!endStream) this.#body = this.#newBody()
      this.#send()
    },
    data: (chunk, end) => {
      if (this.#done) return true
      this.#body ??= this.#newBody()
      return this.#body.write(chunk, end)
    }
  }

  #newBody (): RequestBody {
    const upstream = this.#route.upstream!
    // Kept for a resend only when something may resend it: a retry, or a mirror.
    const resend = (upstream.retries?.numRetries ?? 0) > 0 || upstream.mirror !== undefined
    return new RequestBody({
      retain: resend ? RETRY_BUFFER_LIMIT : 0,
      highWaterMark: this.#app.highWaterMark,
      onDrain: () => this.drained('request'),
      onOverflow: () => {
        this.#router.disableRetries()
        // Envoy's `retry_or_shadow_abandoned`: the body outgrew the retry buffer.
        const cluster = this.#router.cluster?.name ?? this.#route.upstream?.cluster
        if (cluster !== undefined) this.#app.stats.cluster(cluster, 'retry_or_shadow_abandoned')
      }
    })
  }

  #send (): void {
    if (this.#sent || this.#done) return
    this.#sent = true
    // A client that reset its stream (or went away) before the request could be sent opens nothing upstream.
    if (clientGone(this.#request.raw)) {
      this.#close()
      return
    }
    // A raw body keeps the framing it came with (a filter that changes its length deletes Content-Length);
    // a body Fastify parsed is a re-serialisation, framed anew.
    if (this.#parsedBody) delete this.#headers!['content-length']
    if (this.#route.upstream?.mirror !== undefined) this.#mirrorBody = this.#body?.openMirror()
    this.#router.start()
    if (this.#router.cluster !== undefined) this.#mirror()
    else this.#mirrorBody?.destroy()
  }

  #mirrorBody: Readable | undefined

  // ---- RouterOwner: one attempt on one endpoint -------------------------------------------------------

  openAttempt (cluster: Cluster, host: Host, _attempt: number, events: AttemptEvents): Attempt {
    const upstream = this.#route.upstream!
    const endpoint = host.endpoint
    const headers: Headers = { ...this.#headers! }
    if (upstream.hostRewrite === undefined && upstream.autoHostRewrite !== true) {
      // Envoy keeps the client's Host (an HTTP/2 client's `:authority`) unless the route rewrites it.
      headers.host = this.#request.headers.host ?? (this.#request.headers[':authority'] as string | undefined) ?? endpoint.authority
    } else {
      rewriteHost(headers, upstream, endpoint)
    }
    const controller = new AbortController()
    const method = this.#request.raw.method ?? 'GET'
    const body = this.#body?.open()
    const agent = this.#app.agents.get(cluster.name)!
    agent.request({
      origin: endpoint.origin,
      path: this.#path(),
      method: method as Dispatcher.HttpMethod,
      headers,
      body,
      signal: controller.signal,
      // The route timeout is the router's; a body idles no longer than the stream allows.
      headersTimeout: 0
    }).then((res) => {
      if (!events.answered(res.statusCode)) { discard(res.body); return }
      this.#onResponse(res)
    }, (err: Error & { code?: string }) => {
      if (controller.signal.aborted) return
      const code = err.code ?? (err.cause as { code?: string } | undefined)?.code
      if (code !== undefined && connectFailures.has(code)) events.failed('connect-failure', err)
      else if (err.name === 'InvalidArgumentError' || code === 'UND_ERR_INVALID_ARG') events.failed('protocol', err)
      else events.failed('reset', err)
    })
    return { abort: () => controller.abort() }
  }

  routerFailed (failure: RouterFailure): void {
    this.#request.log.warn({ err: failure.error, code: failure.error.code }, 'upstream request failed')
    this.chain.responseFlags = failure.responseFlag
    const body = failure.body === '' ? undefined : Buffer.from(failure.body)
    const headers: Record<string, string> = { ...failure.headers }
    if (body !== undefined) headers['content-type'] = 'text/plain'
    this.localReply(this.chain.filters.length, failure.status, body, headers)
  }

  #path (): string {
    return rewritePath(this.#request.raw.url ?? '/', this.#route.prefix, this.#route.upstream!.prefixRewrite)
  }

  /** Envoy's request mirroring: a fire-and-forget copy, Host suffixed with `-shadow`. */
  #mirror (): void {
    const mirror = this.#route.upstream?.mirror
    if (mirror === undefined || Math.random() * 100 >= (mirror.percent ?? 100)) { this.#mirrorBody?.destroy(); return }
    const cluster = this.#app.clusters.get(mirror.cluster)
    const host = cluster?.chooseHost()
    if (cluster === undefined || host === undefined) { this.#mirrorBody?.destroy(); return }
    const headers = this.#headers!
    this.#app.stats.cluster(cluster.name, 'upstream_rq_total')
    const authority = firstValue(headers.host) ?? this.#request.headers.host ?? host.endpoint.authority
    const method = this.#request.raw.method ?? 'GET'
    const body = this.#mirrorBody
    this.#mirrorBody = undefined
    // A body too large to copy from its first byte is not mirrored (Envoy's retry_or_shadow_abandoned).
    if (this.#body !== undefined && body === undefined) return
    this.#app.agents.get(cluster.name)!.request({
      origin: host.endpoint.origin,
      path: this.#path(),
      method: method as Dispatcher.HttpMethod,
      headers: { ...headers, host: `${authority}-shadow` },
      body
    }).then((res) => res.body.dump(), () => this.#app.stats.cluster(cluster.name, 'upstream_rq_mirror_failed'))
  }

  #onResponse (res: Dispatcher.ResponseData): void {
    if (this.#done) { discard(res.body); return }
    const headers: Headers = {}
    for (const key in res.headers) {
      const v = res.headers[key]
      if (v !== undefined && !hopByHopResponse.has(key)) headers[key] = v
    }
    // A filter that reads response data may change its length: let Node frame the body (chunked) instead.
    if (!this.chain.responseDataPassthrough) delete headers['content-length']
    const stream = res.body
    this.#upstreamBody = stream
    this.#router.decorateResponse(headers)
    this.chain.responseHeaders(res.statusCode, headers, false)
    stream.on('data', (chunk: Buffer) => {
      if (!this.chain.responseData(chunk, false)) stream.pause()
    })
    stream.on('end', () => this.chain.responseData(EMPTY, true))
    stream.on('error', (err: Error) => this.abort(err))
    if (this.#holds > 0) stream.pause()
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

  #resumeUpstream (): void {
    if (this.#holds > 0 || this.#out?.writableNeedDrain === true) return
    this.#upstreamBody?.resume()
  }

  localReply (fromFilter: number, status: number, body: Buffer | undefined, headers: Record<string, string>): void {
    if (this.#done) return
    const reply = this.#reply
    if (reply.sent || this.#out !== undefined) {
      this.abort(new SwyUpstreamProtocolError(this.#router.cluster?.name ?? '(none)', 'local reply after the response started'))
      return
    }
    this.#done = true
    this.#router.release()
    this.#body?.close()
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

  /** `streamIdleTimeout` or `requestTimeout` before the response head: 408, and the connection is not kept. */
  timeoutReply (error: Error & { statusCode: number, code: string }): void {
    const headers: Record<string, string> = { 'content-type': 'text/plain' }
    if (this.#request.raw.httpVersionMajor === 1) headers.connection = 'close'
    this.localReply(this.chain.filters.length, error.statusCode, Buffer.from(timeoutBody(error)), headers)
  }

  abort (error: Error): void {
    this.#request.log.warn({ err: error }, 'stream aborted')
    if (this.#upstreamBody !== undefined) discard(this.#upstreamBody)
    this.#out?.destroy(error)
    this.#reply.raw.destroy()
    this.#close(error)
  }

  /** Stops reading the request body and the upstream's response body until `resume()` (a filter's hold). */
  pause (): void {
    this.#holds++
    this.#request.raw.pause()
    this.#upstreamBody?.pause()
  }

  resume (): void {
    if (this.#holds > 0) this.#holds--
    if (this.#holds > 0) return
    if (!this.#requestEnded) this.#request.raw.resume()
    this.#resumeUpstream()
  }

  drained (direction: 'request' | 'response'): void {
    if (this.#holds > 0) return
    if (direction === 'request') { if (!this.#requestEnded && !this.#done) this.#request.raw.resume() } else this.#resumeUpstream()
  }

  /** The client's exchange closed (answered, or reset): an upstream request still in flight is aborted. */
  #close (error?: Error): void {
    this.#done = true
    this.#router.release()
    this.#body?.close()
    this.#mirrorBody?.destroy()
    if (this.#upstreamBody !== undefined && !this.#upstreamBody.readableEnded) discard(this.#upstreamBody)
    this.chain.close(error)
  }
}

/**
 * A request body nobody has read yet: declared by Content-Length or Transfer-Encoding on HTTP/1.1; on
 * HTTP/2, any stream whose HEADERS did not end it (DATA may follow without a content-length).
 */
function hasUnreadBody (raw: FastifyRequest['raw']): boolean {
  if (raw.readableEnded || (raw as { readableDidRead?: boolean }).readableDidRead === true) return false
  const stream = (raw as { stream?: { endAfterHeaders?: boolean } }).stream
  if (stream !== undefined) return stream.endAfterHeaders !== true
  const length = raw.headers['content-length']
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) > 0)
}

/** The client reset its HTTP/2 stream or closed its connection. */
function clientGone (raw: FastifyRequest['raw']): boolean {
  const r = raw as FastifyRequest['raw'] & { stream?: { destroyed: boolean }, aborted?: boolean }
  if (r.stream !== undefined) return r.stream.destroyed
  return r.socket?.destroyed === true
}

function bodyBytes (body: unknown): Buffer | undefined {
  if (body === undefined || body === null) return undefined
  if (Buffer.isBuffer(body)) return body.length === 0 ? undefined : body
  if (typeof body === 'string') return body.length === 0 ? undefined : Buffer.from(body)
  return Buffer.from(JSON.stringify(body))
}

/** Drops an upstream body unread: undici reports its own abort as an error, which nobody needs. */
function discard (body: Readable): void {
  body.on('error', noop)
  body.destroy()
}

function noop (): void {}
