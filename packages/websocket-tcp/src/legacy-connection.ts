import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { UpstreamOptions } from '@switchyard/core'
import {
  closeSoon, connectEndpoint, hashInputOf, Router, StreamTimeouts, timeoutBody, Tunnel, tunnelCloseChannel, upgradeStartChannel,
  type AppState, type Attempt, type ResponseHead, type AttemptEvents, type Cluster, type Downstream, type Host, type RouteState, type RouterFailure
} from '@switchyard/core/internal'
import { buildRequestHead } from './request-head.js'
import { RequestBody } from './request-body.js'
import { UpstreamAnswer, type Answer } from './upstream-answer.js'
import { relayRefusal } from './refusal-relay.js'
import { SwyWstcpBadRequestError, SwyWstcpBadResponseError, SwyWstcpConnectError, SwyWstcpConnectTimeoutError } from './errors.js'

/** Settings of one registration of the plugin. */
export interface LegacySettings {
  /** Pipe blindly right after connecting, as Envoy ≤1.8 did, instead of waiting for the upstream's 101. */
  trustUpstream: boolean
}

type Phase = 'connecting' | 'handshake' | 'response' | 'tunnel' | 'closed'

const EMPTY = Buffer.alloc(0)

/**
 * One legacy WebSocket connection (Envoy ≤1.8 `use_websocket`, its `WsHandlerImpl` over a TCP proxy): core's
 * router picks the cluster and endpoint (breakers, health, load balancing as for every request), the request
 * head is re-serialised onto a fresh TCP connection to it, and from then on bytes are piped both ways
 * through core's `Tunnel` without ever being interpreted, so every WebSocket draft works.
 *
 * By default (beyond Envoy) the upstream's response head is read before the pipe opens: only a `101`
 * opens it; any other answer is relayed, none of the client's further bytes are forwarded, and both
 * connections close (the WebSocket smuggling guard). With `trustUpstream` the pipe opens at connect.
 */
export class LegacyConnection {
  readonly #app: AppState
  readonly #settings: LegacySettings
  // The request and its response object are needed only until the pipe opens; dropped then, so an idle
  // tunnel holds its two sockets and little else.
  #request: FastifyRequest | undefined
  readonly #log: FastifyBaseLogger
  readonly #route: RouteState
  readonly #upstreamOptions: UpstreamOptions
  #downstream: Downstream | undefined
  readonly #down: Duplex
  readonly #router: Router
  #phase: Phase = 'connecting'
  #events: AttemptEvents | undefined
  #upstream: Duplex | undefined
  /** `upstream.idleTimeout` while the guard waits for the answer (the Tunnel's own timer takes over after). */
  #answerTimer: NodeJS.Timeout | undefined
  #tunnel: Tunnel | undefined
  #body: RequestBody | undefined
  readonly #answer = new UpstreamAnswer()
  /** Client bytes past the request, held until a 101 (dropped without one). */
  #held: Buffer[] = []
  #heldEnd = false
  #sentToClient = false
  #bytesIn = 0
  #bytesOut = 0
  #error: Error | undefined
  #finished = false

  constructor (app: AppState, settings: LegacySettings, request: FastifyRequest, route: RouteState, downstream: Downstream) {
    this.#app = app
    this.#settings = settings
    this.#request = request
    this.#log = request.log
    this.#route = route
    this.#upstreamOptions = route.upstream ?? {}
    this.#downstream = downstream
    this.#down = downstream.stream
    this.#router = new Router({
      app,
      upstream: this.#upstreamOptions,
      // Envoy's old style had no route timeout (core refuses `upstream.timeout` here): the cluster's
      // connect timeout and `upstream.idleTimeout` bound the wait instead.
      timeout: 0,
      connectionPerAttempt: true,
      log: request.log,
      owner: this,
      hashOf: route.hashOf,
      hashInput: () => hashInputOf(request)
    })
  }

  /** Routes, connects and sends the request head. */
  start (): void {
    const app = this.#app
    app.streams.add(this)
    app.stats.inc('downstream_cx_websocket_total')
    app.stats.inc('downstream_cx_websocket_active')
    if (upgradeStartChannel.hasSubscribers) {
      upgradeStartChannel.publish({ upgradeType: 'websocket', method: this.#request!.method, url: this.#request!.url, route: this.#route.url, legacy: true })
    }
    const down = this.#down
    // Gone while the hooks ran: its 'close' has fired already, and no upstream connection is opened for it.
    if (down.destroyed) {
      this.#onDownstreamClose()
      return
    }
    down.on('error', this.#onDownstreamError)
    down.on('close', this.#onDownstreamClose)
    this.#router.start()
  }

  /** Ends the connection at once (its endpoint let go of it). */
  abort (error: Error): void {
    this.destroy(error)
  }

  /** `streamIdleTimeout` or `requestTimeout` before the pipe opens: 408, and the upstream connection is given up. */
  timeoutReply (error: Error & { statusCode: number, code: string }): void {
    if (this.#phase !== 'connecting' && this.#phase !== 'handshake') {
      // The upstream's refusal is being relayed byte for byte: nothing else can be answered.
      this.destroy(error)
      return
    }
    this.#router.release()
    this.#fail(error, error.statusCode, {}, timeoutBody(error))
  }

  /** Ends the connection at once (`app.close()`). */
  destroy (error?: Error): void {
    this.#error ??= error
    if (this.#tunnel !== undefined) {
      this.#tunnel.destroy(error)
      return
    }
    this.#router.release()
    this.#upstream?.destroy()
    this.#down.destroy()
  }

  // ---- RouterOwner: the one attempt (legacy routes refuse retries) -----------------------------------

  openAttempt (cluster: Cluster, host: Host, _attempt: number, events: AttemptEvents): Attempt {
    const endpoint = host.endpoint
    let head: string
    try {
      head = buildRequestHead(this.#request!.raw, this.#route, this.#upstreamOptions, endpoint)
    } catch (err) {
      // Refused when the route was added (route-check.ts); never sent half-written.
      events.failed('protocol', err as Error)
      return { abort: noop }
    }
    this.#events = events
    this.#body = new RequestBody(this.#request!.raw)
    const connection = connectEndpoint(cluster, endpoint, () => this.#onConnected(head))
    const up = this.#upstream = connection.socket
    up.on('error', (err: Error & { code?: string }) => {
      if (connection.connected) { this.#error ??= err; return }
      const e = err.code === 'ETIMEDOUT'
        ? new SwyWstcpConnectTimeoutError(cluster.name, endpoint.authority, cluster.connectTimeout)
        : new SwyWstcpConnectError(cluster.name, endpoint.authority, err.message)
      e.cause = err
      events.failed('connect-failure', e)
    })
    up.on('close', this.#onUpstreamClose)
    // Half-open: a FIN before the answer does not close the socket, so it is watched on its own.
    up.on('end', this.#onUpstreamClose)
    return { abort: () => up.destroy() }
  }

  routerFailed (failure: RouterFailure): void {
    if (this.#phase === 'closed' || this.#phase === 'tunnel' || this.#phase === 'response') return
    // Envoy's legacy handler answered every connection failure with 504 (its own codes say why).
    const cause = failure.error.cause as (Error & { statusCode?: number, code?: string }) | undefined
    if (failure.kind === 'connect-failure' && cause?.code?.startsWith('SWY_ERR_WSTCP_') === true) {
      this.#fail(cause, cause.statusCode ?? 504, {}, '')
      return
    }
    this.#fail(failure.error, failure.status, failure.headers, failure.body)
  }

  // ---- connected: the request goes out -------------------------------------------------------------

  #onConnected (head: string): void {
    if (this.#phase !== 'connecting') return
    const up = this.#upstream!
    up.write(head)
    const early = this.#downstream!.head
    if (this.#settings.trustUpstream) {
      // Envoy's original: head, early data, then a blind pipe; the upstream's answer is never read.
      if (early.length > 0) {
        this.#bytesIn += early.length
        up.write(early)
      }
      this.#events!.answered(101)
      this.#openPipe(EMPTY)
      return
    }
    this.#phase = 'handshake'
    // Envoy's idle timeout runs from connect (its pipe is already open): a silent upstream must not hold both connections.
    const idle = this.#upstreamOptions.idleTimeout
    if (idle !== undefined && idle > 0) this.#answerTimer = setTimeout(this.#onAnswerIdle, idle)
    this.#fromClient(early)
    if (!this.#body!.complete && this.#phase === 'handshake') {
      // The rest of the request (a hixie-76 key, a Content-Length body) may still be on its way.
      const down = this.#down
      down.on('data', this.#fromClient)
      down.on('end', this.#onClientEndEarly)
    }
    up.on('data', this.#onAnswer)
  }

  /** Forwards what belongs to the request; holds the rest until the upstream accepts. */
  #fromClient = (chunk: Buffer): void => {
    if (chunk.length === 0) return
    this.#answerTimer?.refresh()
    this.#bytesIn += chunk.length
    const body = this.#body!
    let n: number
    try {
      n = body.take(chunk)
    } catch (err) {
      this.#router.release()
      this.#fail(new SwyWstcpBadRequestError((err as Error).message), 400, {}, '')
      return
    }
    const up = this.#upstream!
    if (n > 0 && !up.write(n === chunk.length ? chunk : chunk.subarray(0, n)) && !body.complete) {
      // A large Content-Length body: read no faster than the upstream takes it.
      const down = this.#down
      down.pause()
      up.once('drain', () => { if (this.#phase === 'handshake' && !body.complete) down.resume() })
    }
    if (n < chunk.length) this.#held.push(chunk.subarray(n))
    if (body.complete) this.#stopReadingClient()
  }

  #onClientEndEarly = (): void => {
    this.#heldEnd = true
  }

  #stopReadingClient (): void {
    const down = this.#down
    down.removeListener('data', this.#fromClient)
    down.removeListener('end', this.#onClientEndEarly)
    down.pause()
  }

  // ---- the upstream's answer (smuggling guard) -----------------------------------------------------

  #onAnswer = (chunk: Buffer): void => {
    this.#answerTimer?.refresh()
    let answer: Answer
    try {
      answer = this.#answer.push(chunk)
      while (answer.kind === 'interim') {
        this.#toClient(answer.bytes)
        answer = this.#answer.next()
      }
    } catch (err) {
      this.#events!.failed('protocol', new SwyWstcpBadResponseError(this.#router.cluster!.name, (err as Error).message))
      return
    }
    if (answer.kind === 'incomplete') return
    this.#upstream!.removeListener('data', this.#onAnswer)
    if (answer.kind === 'switched') {
      this.#events!.answered(101)
      this.#openPipe(this.#withCookie(answer.bytes, answer.headLength))
    } else {
      this.#events!.answered(answer.head.statusCode)
      this.#refused(answer.head, answer.rest)
    }
  }

  /**
   * The upstream did not switch protocols: its response goes to the client with `Connection: close`,
   * no held or later client byte reaches the upstream, and both connections close once it is relayed.
   */
  #refused (head: ResponseHead, rest: Buffer): void {
    this.#clearAnswerTimer()
    this.#phase = 'response'
    this.#stopReadingClient()
    this.#held = []
    this.#app.stats.cluster(this.#router.cluster!.name, 'upstream_cx_destroy')
    this.#log.debug({ statusCode: head.statusCode, cluster: this.#router.cluster!.name }, 'legacy websocket: upstream refused the upgrade; not tunnelling')
    relayRefusal(this.#upstream!, this.#down, (c) => this.#toClient(c), head, rest, this.#request!.raw.method ?? 'GET', this.#log)
  }

  /**
   * The 101's head with the sticky cookie of the route's hash policy added (a `Set-Cookie` line before the
   * blank line), as the router adds it to every answer; the rest of the bytes untouched.
   */
  #withCookie (bytes: Buffer, headLength: number): Buffer {
    const extra: Record<string, string | string[]> = {}
    this.#router.decorateResponse(extra)
    const cookie = extra['set-cookie']
    if (cookie === undefined) return bytes
    const line = Buffer.from(`Set-Cookie: ${String(cookie)}\r\n\r\n`, 'latin1')
    return Buffer.concat([bytes.subarray(0, headLength - 2), line, bytes.subarray(headLength)])
  }

  // ---- the pipe -----------------------------------------------------------------------------------

  /** Opens the raw pipe: the upstream's answer so far first, then held client bytes, then the Tunnel. */
  #openPipe (answer: Buffer): void {
    this.#clearAnswerTimer()
    this.#phase = 'tunnel'
    // A pipe now: the route's idleTimeout governs it, not the stream timeouts.
    StreamTimeouts.of(this.#request!.raw)?.stop()
    const up = this.#upstream!
    const down = this.#down
    this.#stopReadingClient()
    up.removeListener('close', this.#onUpstreamClose)
    up.removeListener('end', this.#onUpstreamClose)
    down.removeListener('close', this.#onDownstreamClose)
    if (answer.length > 0) this.#toClient(answer)
    for (const chunk of this.#held) up.write(chunk)
    this.#held = []
    if (this.#heldEnd) up.end()
    this.#tunnel = new Tunnel(down, up, {
      // Envoy `websocket_config.idle_timeout`: no byte either way for this long closes both sides.
      idleTimeout: this.#upstreamOptions.idleTimeout,
      onClose: (reason, error) => {
        if (reason === 'idle_timeout') this.#app.stats.inc('downstream_rq_idle_timeout')
        this.#finish(reason, error ?? this.#error)
      }
    })
    this.#downstream!.detach()
    this.#request = undefined
    this.#downstream = undefined
    // Both sides may already be gone (a client that closed while the answer was read).
    if (down.destroyed || up.destroyed) {
      if (!down.destroyed) down.destroy()
      if (!up.destroyed) up.destroy()
    }
  }

  #toClient (chunk: Buffer): boolean {
    this.#sentToClient = true
    this.#bytesOut += chunk.length
    return this.#down.write(chunk)
  }

  // ---- failures before the pipe opens -----------------------------------------------------------------

  #onUpstreamClose = (): void => {
    if (this.#phase === 'handshake') {
      // Closed (or reset) before a complete answer: it broke before answering.
      this.#events?.failed('reset', new Error('connection closed before a response'))
    } else if (this.#phase === 'response') {
      closeSoon(this.#down)
    }
  }

  #onDownstreamError = (err: Error): void => {
    this.#error ??= err
  }

  #onDownstreamClose = (): void => {
    this.#clearAnswerTimer()
    this.#router.release()
    this.#upstream?.destroy()
    this.#finish('downstream', this.#error)
  }

  /** Answers the client (`Connection: close`) and closes both sides. */
  #fail (err: Error & { code?: string }, status: number, headers: Record<string, string>, body: string): void {
    if (this.#phase === 'closed' || this.#phase === 'tunnel' || this.#phase === 'response') return
    this.#phase = 'closed'
    this.#error ??= err
    this.#clearAnswerTimer()
    this.#upstream?.destroy()
    if (status >= 500) this.#log.warn({ err, code: err.code }, 'legacy websocket: no pipe to the upstream')
    else this.#log.info({ err, code: err.code }, 'legacy websocket: no pipe to the upstream')
    const down = this.#downstream!
    this.#stopReadingClient()
    if (this.#sentToClient || down.responseStarted || down.stream.destroyed) {
      down.stream.destroy()
      return
    }
    const payload = body === '' ? undefined : Buffer.from(body)
    down.respond(status, { ...headers, ...(payload !== undefined ? { 'content-type': 'text/plain' } : {}), 'content-length': String(payload?.length ?? 0) })
    down.end(payload)
  }

  #clearAnswerTimer (): void {
    if (this.#answerTimer !== undefined) clearTimeout(this.#answerTimer)
    this.#answerTimer = undefined
  }

  /** No byte either way for `idleTimeout` ms before the answer: both sides close, as the Tunnel's idle timeout does. */
  #onAnswerIdle = (): void => {
    this.#answerTimer = undefined
    if (this.#phase !== 'handshake') return
    this.#app.stats.inc('downstream_rq_idle_timeout')
    this.#finish('idle_timeout', this.#error)
    this.#upstream?.destroy()
    this.#down.destroy()
  }

  #finish (reason: string, error: Error | undefined): void {
    if (this.#finished) return
    this.#finished = true
    this.#phase = 'closed'
    this.#router.release()
    const app = this.#app
    app.stats.dec('downstream_cx_websocket_active')
    app.streams.delete(this)
    if (tunnelCloseChannel.hasSubscribers) {
      tunnelCloseChannel.publish({
        upgradeType: 'websocket',
        bytesFromDownstream: this.#bytesIn + (this.#tunnel?.bytesFromDownstream ?? 0),
        bytesFromUpstream: this.#bytesOut + (this.#tunnel?.bytesFromUpstream ?? 0),
        reason,
        error,
        legacy: true
      })
    }
  }
}

function noop (): void {}
