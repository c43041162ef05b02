import type { Socket } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Http2ServerRequest, ServerHttp2Stream } from 'node:http2'
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { AppState } from './app-state.js'
import { resetStream } from './tunnel.js'
import { kStreamTimeouts, kUpgrade } from './symbols.js'
import { SwyRequestTimeoutError, SwyStreamIdleTimeoutError } from './errors.js'

type TimeoutError = InstanceType<typeof SwyStreamIdleTimeoutError> | InstanceType<typeof SwyRequestTimeoutError>

/** The stream that took a request over (a proxied request, an upgrade, a legacy connection). */
export interface TimeoutReplier {
  /**
   * A timeout fired before any response head: answer `error.statusCode` (408) now, as a local reply
   * through the stream's own path (its filter chain), giving up its upstream attempt. The connection
   * does not stay open after it (RFC 9110 §15.5.9).
   */
  timeoutReply (error: TimeoutError): void
}

/**
 * Envoy's HTTP connection manager timeouts for one proxied stream, armed when its route's `onRequest`
 * runs (before Fastify reads a body) and stopped when the stream ends or becomes a tunnel:
 * - `streamIdleTimeout`: no byte either way for that long (a body that stops, a client that does not
 *   read its response, an upgrade nobody answers). HTTP/1.x samples the socket's byte counts (Node's
 *   HTTP parser reads the socket without `'data'` events); HTTP/2 uses the stream's own inactivity timer,
 *   which Node refreshes on every frame read or written.
 * - `requestTimeout`: the whole request received (an upgrade: answered) within that long.
 * Past either: 408 before the response head (`TimeoutReplier.timeoutReply`, or Fastify's reply while
 * Fastify still holds the request), a reset after it; counted as `downstream_rq_idle_timeout` /
 * `downstream_rq_timeout`.
 */
export class StreamTimeouts {
  readonly #app: AppState
  readonly #request: FastifyRequest
  readonly #reply: FastifyReply
  readonly #socket: Socket | undefined
  readonly #stream: ServerHttp2Stream | undefined
  #owner: TimeoutReplier | undefined
  #idleTimer: NodeJS.Timeout | undefined
  #requestTimer: NodeJS.Timeout | undefined
  #progress = 0
  #lastActive = 0
  #stopped = false

  constructor (app: AppState, request: FastifyRequest, reply: FastifyReply) {
    this.#app = app
    this.#request = request
    this.#reply = reply
    const raw = request.raw
    this.#stream = (raw as unknown as Partial<Http2ServerRequest>).stream
    this.#socket = this.#stream === undefined ? (raw as IncomingMessage).socket : undefined
    const idle = app.streamIdleTimeout
    if (idle > 0) {
      if (this.#stream !== undefined) {
        this.#stream.setTimeout(idle, this.#onIdle)
      } else if (this.#socket !== undefined) {
        this.#progress = progressOf(this.#socket)
        this.#lastActive = performance.now()
        this.#idleTimer = setTimeout(this.#sample, tick(idle)).unref()
      }
    }
    if (app.requestTimeout > 0) this.#requestTimer = setTimeout(this.#onRequestTimeout, app.requestTimeout).unref()
    reply.raw.once('close', this.stop)
  }

  /** The timeouts armed for `raw`, if its route proxies. */
  static of (raw: object): StreamTimeouts | undefined {
    return (raw as Record<symbol, StreamTimeouts | undefined>)[kStreamTimeouts]
  }

  /** From now on `owner` answers a timeout that fires before the response head. */
  adopt (owner: TimeoutReplier): void {
    this.#owner = owner
  }

  /** Disarms both timers (the stream ended, or became a tunnel with its own idle timeout). */
  stop = (): void => {
    if (this.#stopped) return
    this.#stopped = true
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer)
    if (this.#requestTimer !== undefined) clearTimeout(this.#requestTimer)
    this.#idleTimer = undefined
    this.#requestTimer = undefined
    if (this.#stream !== undefined && !this.#stream.destroyed) this.#stream.setTimeout(0, this.#onIdle)
    // Let go of the exchange: a tunnel that outlives its request must not keep the response alive through here.
    this.#reply.raw.removeListener('close', this.stop)
    delete (this.#request.raw as unknown as Record<symbol, unknown>)[kStreamTimeouts]
  }

  /** HTTP/1.x: the socket's byte counts moved since the last look, or the stream has been idle `streamIdleTimeout` ms. */
  #sample = (): void => {
    this.#idleTimer = undefined
    if (this.#stopped) return
    const now = performance.now()
    const progress = progressOf(this.#socket!)
    if (progress !== this.#progress) {
      this.#progress = progress
      this.#lastActive = now
    }
    const idle = this.#app.streamIdleTimeout
    const quiet = now - this.#lastActive
    if (quiet >= idle) {
      this.#fire('idle')
      return
    }
    this.#idleTimer = setTimeout(this.#sample, Math.min(tick(idle), Math.ceil(idle - quiet))).unref()
  }

  #onIdle = (): void => {
    if (!this.#stopped) this.#fire('idle')
  }

  #onRequestTimeout = (): void => {
    this.#requestTimer = undefined
    // Envoy disarms request_timeout once the request is in, or the response has started.
    if (this.#stopped || this.#received() || this.#reply.raw.headersSent) return
    this.#fire('request')
  }

  /** The whole request has arrived. An upgrade's request only ends with its answer. */
  #received (): boolean {
    const raw = this.#request.raw as IncomingMessage & { [kUpgrade]?: unknown }
    if (raw[kUpgrade] !== undefined) return false
    if (this.#stream !== undefined) return this.#stream.state?.remoteClose === 1 || this.#stream.readableEnded
    return raw.complete
  }

  #fire (kind: 'idle' | 'request'): void {
    this.stop()
    const app = this.#app
    const error = kind === 'idle' ? new SwyStreamIdleTimeoutError(app.streamIdleTimeout) : new SwyRequestTimeoutError(app.requestTimeout)
    app.stats.inc(kind === 'idle' ? 'downstream_rq_idle_timeout' : 'downstream_rq_timeout')
    this.#request.log.info({ code: error.code }, error.message)
    const reply = this.#reply
    // `reply.sent` is true for a hijacked reply (every upgrade): whether a head went out is the response's to say.
    if (reply.raw.headersSent) {
      // The response has started: nothing can be answered any more, the stream is reset (Envoy). A socket
      // with writes still queued is closed instead: Node cannot reset it (its close never completes).
      const downstream = this.#stream ?? this.#socket
      if (downstream === undefined || downstream.destroyed) return
      if (this.#stream === undefined && downstream.writableLength > 0) downstream.destroy()
      else resetStream(downstream)
      return
    }
    if (this.#owner !== undefined) {
      this.#owner.timeoutReply(error)
      return
    }
    // Fastify still holds the request (its hooks, or a body parser waiting for the rest of the body).
    reply.code(error.statusCode)
    if (this.#stream === undefined) reply.header('connection', 'close')
    reply.type('text/plain').send(timeoutBody(error))
  }
}

/** The body of a timeout's 408, Envoy's local-reply text: `stream timeout` or `request timeout`. */
export function timeoutBody (error: { code: string }): string {
  return error.code === 'SWY_ERR_STREAM_IDLE_TIMEOUT' ? 'stream timeout' : 'request timeout'
}

/** The `onRequest` hook core adds to every route that proxies: arms the stream's timeouts. */
export function streamTimeoutsHook (app: AppState): onRequestHookHandler {
  return function armStreamTimeouts (request, reply, done) {
    ;(request.raw as unknown as Record<symbol, StreamTimeouts>)[kStreamTimeouts] = new StreamTimeouts(app, request, reply)
    done()
  }
}

/** Bytes read and written (or queued to write) on a socket: unchanged means nothing moved either way. */
function progressOf (socket: Socket): number {
  return socket.bytesRead + socket.bytesWritten
}

/** How often an HTTP/1.x stream's byte counts are looked at: a quarter of the timeout. */
function tick (idle: number): number {
  return Math.max(1, Math.ceil(idle / 4))
}
