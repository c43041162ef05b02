import diagnostics from 'node:diagnostics_channel'
import net from 'node:net'
import tls from 'node:tls'
import type { Duplex } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import {
  chooseCluster, closeSoon, errors as coreErrors, Tunnel, type Cluster, type Downstream, type Endpoint,
  type RouteState, type SwitchyardCore, type UpstreamOptions
} from '@switchyard/core'
import { buildRequestHead, isChunked, requestBodyLength } from './request-head.js'
import { bodyFraming, ChunkedScanner, closingHead, parseResponseHead, type BodyFraming, type ResponseHead } from './response-head.js'
import { SwyWstcpBadRequestError, SwyWstcpBadResponseError, SwyWstcpConnectError, SwyWstcpConnectTimeoutError } from './errors.js'

const upgradeStartChannel = diagnostics.channel('switchyard:upgrade:start')
const tunnelCloseChannel = diagnostics.channel('switchyard:tunnel:close')

/** Settings of one registration of the plugin. */
export interface LegacySettings {
  /** Pipe blindly right after connecting, as Envoy ≤1.8 did, instead of waiting for the upstream's 101. */
  trustUpstream: boolean
}

type Phase = 'connecting' | 'handshake' | 'response' | 'tunnel' | 'closed'

const EMPTY = Buffer.alloc(0)

/**
 * One legacy WebSocket connection (Envoy ≤1.8 `use_websocket`, its `WsHandlerImpl` over a TCP proxy): the
 * request head is re-serialised onto a fresh TCP connection to an endpoint, and from then on bytes are
 * piped both ways through core's `Tunnel` without ever being interpreted, so every WebSocket draft works.
 *
 * By default (beyond Envoy) the upstream's response head is read before the pipe opens: only a `101`
 * opens it; any other answer is relayed, none of the client's further bytes are forwarded, and both
 * connections close (the WebSocket smuggling guard). With `trustUpstream` the pipe opens at connect.
 */
export class LegacyConnection {
  readonly #core: SwitchyardCore
  readonly #settings: LegacySettings
  // The request and its response object are needed only until the pipe opens; dropped then, so an idle
  // tunnel holds its two sockets and little else (issue 3: memory per idle tunnel).
  #request: FastifyRequest | undefined
  readonly #route: RouteState
  readonly #upstreamOptions: UpstreamOptions
  #downstream: Downstream | undefined
  readonly #down: Duplex
  #phase: Phase = 'connecting'
  #cluster: Cluster | undefined
  #endpoint: Endpoint | undefined
  #upstream: Duplex | undefined
  #connectTimer: NodeJS.Timeout | undefined
  /** `upstream.idleTimeout` while the guard waits for the answer (the Tunnel's own timer takes over after). */
  #answerTimer: NodeJS.Timeout | undefined
  #tunnel: Tunnel | undefined
  /** Request bytes (Content-Length, hixie-76 key) still to forward before the upstream answers. */
  #bodyLeft = 0
  /** A chunked request body: forwarded up to its last chunk, found by this scanner (`#bodyLeft` is then Infinity until it ends). */
  #bodyScanner: ChunkedScanner | undefined
  /** Client bytes past the request, held until a 101 (dropped without one). */
  #held: Buffer[] = []
  #heldEnd = false
  #answer: Buffer = EMPTY
  #sentToClient = false
  #bytesIn = 0
  #bytesOut = 0
  #error: Error | undefined
  #finished = false

  constructor (core: SwitchyardCore, settings: LegacySettings, request: FastifyRequest, route: RouteState, downstream: Downstream) {
    this.#core = core
    this.#settings = settings
    this.#request = request
    this.#route = route
    this.#upstreamOptions = route.upstream ?? {}
    this.#downstream = downstream
    this.#down = downstream.stream
  }

  /** Picks the cluster and endpoint, and connects. */
  start (): void {
    const core = this.#core
    core.streams.add(this)
    core.stats.inc('downstream_cx_websocket_total')
    core.stats.inc('downstream_cx_websocket_active')
    if (upgradeStartChannel.hasSubscribers) {
      upgradeStartChannel.publish({ upgradeType: 'websocket', method: this.#request!.method, url: this.#request!.url, route: this.#route.url, legacy: true })
    }
    const down = this.#down
    down.on('error', this.#onDownstreamError)
    down.on('close', this.#onDownstreamClose)

    // The one cluster choice of core: weighted clusters and runtime shifting, read per connection.
    const name = chooseCluster(this.#upstreamOptions, core.runtime)
    const cluster = name === undefined ? undefined : core.clusters.get(name)
    if (cluster === undefined || cluster.endpoints.length === 0) {
      this.#fail(new coreErrors.SwyNoHealthyUpstreamError(name ?? '(none)'))
      return
    }
    this.#cluster = cluster
    const endpoint = this.#endpoint = cluster.pick()
    let head: string
    try {
      head = buildRequestHead(this.#request!.raw, this.#route, this.#upstreamOptions, endpoint)
    } catch (err) {
      // Refused when the route was added (route-check.ts); never sent half-written.
      this.#request!.log.error({ err }, 'legacy websocket: request head not serialisable')
      this.#down.destroy()
      return
    }
    if (isChunked(this.#request!.raw)) {
      this.#bodyScanner = new ChunkedScanner()
      this.#bodyLeft = Number.POSITIVE_INFINITY
    } else {
      this.#bodyLeft = requestBodyLength(this.#request!.raw)
    }

    core.stats.cluster(cluster.name, 'upstream_cx_total')
    core.stats.cluster(cluster.name, 'upstream_cx_active')
    const up = this.#upstream = connect(cluster, endpoint)
    up.once('close', () => core.stats.cluster(cluster.name, 'upstream_cx_active', -1))
    up.on('error', this.#onUpstreamError)
    up.on('close', this.#onUpstreamClose)
    // Half-open: a FIN before the answer does not close the socket, so it is watched on its own.
    up.on('end', this.#onUpstreamClose)
    up.once(endpoint.secure ? 'secureConnect' : 'connect', () => this.#onConnected(head))
    if (cluster.connectTimeout > 0) {
      this.#connectTimer = setTimeout(() => {
        this.#connectTimer = undefined
        core.stats.cluster(cluster.name, 'upstream_cx_connect_fail')
        this.#fail(new SwyWstcpConnectTimeoutError(cluster.name, endpoint.authority, cluster.connectTimeout))
      }, cluster.connectTimeout)
    }
  }

  /** Ends the connection at once (`app.close()`). */
  destroy (error?: Error): void {
    this.#error ??= error
    if (this.#tunnel !== undefined) {
      this.#tunnel.destroy(error)
      return
    }
    this.#clearConnectTimer()
    this.#upstream?.destroy()
    this.#down.destroy()
  }

  // ---- connected: the request goes out -------------------------------------------------------------

  #onConnected (head: string): void {
    this.#clearConnectTimer()
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
      this.#openPipe(EMPTY)
      return
    }
    this.#phase = 'handshake'
    // Envoy's idle timeout runs from connect (its pipe is already open): a silent upstream must not hold both connections.
    const idle = this.#upstreamOptions.idleTimeout
    if (idle !== undefined && idle > 0) this.#answerTimer = setTimeout(this.#onAnswerIdle, idle)
    this.#fromClient(early)
    if (this.#bodyLeft > 0) {
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
    const n = this.#bodyBytesOf(chunk)
    if (n < 0) return
    const up = this.#upstream!
    if (n > 0) {
      if (!up.write(n === chunk.length ? chunk : chunk.subarray(0, n)) && this.#bodyLeft > 0) {
        // A large Content-Length body: read no faster than the upstream takes it.
        const down = this.#down
        down.pause()
        up.once('drain', () => { if (this.#phase === 'handshake' && this.#bodyLeft > 0) down.resume() })
      }
    }
    if (n < chunk.length) this.#held.push(chunk.subarray(n))
    if (this.#bodyLeft === 0) this.#stopReadingClient()
  }

  /** How many leading bytes of `chunk` still belong to the request body (and counts them off); -1 on a malformed body. */
  #bodyBytesOf (chunk: Buffer): number {
    const scanner = this.#bodyScanner
    if (scanner === undefined || this.#bodyLeft === 0) {
      const n = Math.min(this.#bodyLeft, chunk.length)
      this.#bodyLeft -= n
      return n
    }
    let end: number
    try {
      end = scanner.push(chunk)
    } catch (err) {
      this.#fail(new SwyWstcpBadRequestError((err as Error).message))
      return -1
    }
    if (end === -1) return chunk.length
    this.#bodyLeft = 0
    return end
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
    this.#answer = this.#answer.length === 0 ? chunk : Buffer.concat([this.#answer, chunk])
    for (;;) {
      let head: ResponseHead | null
      try {
        head = parseResponseHead(this.#answer)
      } catch (err) {
        this.#fail(new SwyWstcpBadResponseError(this.#cluster!.name, (err as Error).message))
        return
      }
      if (head === null) return
      if (head.statusCode === 101) {
        this.#upstream!.removeListener('data', this.#onAnswer)
        const answer = this.#answer
        this.#answer = EMPTY
        this.#openPipe(answer)
        return
      }
      if (head.statusCode >= 100 && head.statusCode < 200) {
        // An interim answer (100, 102, 103): relayed as sent; the final one follows.
        this.#toClient(this.#answer.subarray(0, head.length))
        this.#answer = this.#answer.subarray(head.length)
        continue
      }
      this.#upstream!.removeListener('data', this.#onAnswer)
      const rest = this.#answer.subarray(head.length)
      this.#answer = EMPTY
      this.#relayRefusal(head, rest)
      return
    }
  }

  /**
   * The upstream did not switch protocols: its response goes to the client with `Connection: close`,
   * no held or later client byte reaches the upstream, and both connections close once it is relayed.
   */
  #relayRefusal (head: ResponseHead, rest: Buffer): void {
    this.#clearConnectTimer()
    this.#phase = 'response'
    this.#stopReadingClient()
    this.#held = []
    this.#core.stats.cluster(this.#cluster!.name, 'upstream_cx_destroy')
    this.#request!.log.debug({ statusCode: head.statusCode, cluster: this.#cluster!.name }, 'legacy websocket: upstream refused the upgrade; not tunnelling')
    const up = this.#upstream!
    const down = this.#down
    this.#toClient(Buffer.from(closingHead(head), 'latin1'))
    const framing: BodyFraming = bodyFraming(head, this.#request!.raw.method ?? 'GET')
    let left = framing.kind === 'length' ? framing.length : 0
    const scanner = framing.kind === 'chunked' ? new ChunkedScanner() : undefined
    const done = (): void => {
      up.removeListener('data', relay)
      up.destroy()
      closeSoon(down)
    }
    const relay = (chunk: Buffer): void => {
      let end = -1
      if (framing.kind === 'length') {
        end = Math.min(left, chunk.length)
        left -= end
        if (left > 0) end = -1
      } else if (scanner !== undefined) {
        try {
          end = scanner.push(chunk)
        } catch (err) {
          this.#request!.log.debug({ err }, 'legacy websocket: malformed chunked body from upstream')
          up.destroy()
          down.destroy()
          return
        }
      }
      const out = end === -1 ? chunk : chunk.subarray(0, end)
      if (out.length > 0 && !this.#toClient(out)) {
        up.pause()
        down.once('drain', () => up.resume())
      }
      if (end !== -1) done()
    }
    if (framing.kind === 'none' || (framing.kind === 'length' && left === 0)) {
      done()
      return
    }
    up.on('data', relay)
    // A close-delimited body (or a short one) ends when the upstream does.
    up.on('end', () => closeSoon(down))
    if (rest.length > 0) relay(rest)
  }

  // ---- the pipe -----------------------------------------------------------------------------------

  /** Opens the raw pipe: the upstream's answer so far first, then held client bytes, then the Tunnel. */
  #openPipe (answer: Buffer): void {
    this.#clearConnectTimer()
    this.#phase = 'tunnel'
    const up = this.#upstream!
    const down = this.#down
    this.#stopReadingClient()
    up.removeListener('error', this.#onUpstreamError)
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
        if (reason === 'idle_timeout') this.#core.stats.inc('downstream_rq_idle_timeout')
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

  #onUpstreamError = (err: Error & { code?: string }): void => {
    if (this.#phase === 'connecting') {
      this.#clearConnectTimer()
      this.#core.stats.cluster(this.#cluster!.name, 'upstream_cx_connect_fail')
      const e = new SwyWstcpConnectError(this.#cluster!.name, this.#endpoint!.authority, err.message)
      e.cause = err
      this.#fail(e)
      return
    }
    this.#error ??= err
  }

  #onUpstreamClose = (): void => {
    if (this.#phase === 'connecting' || this.#phase === 'handshake') {
      // Closed (or reset) before a complete answer: it broke before answering.
      this.#fail(new coreErrors.SwyUpstreamConnectError(this.#cluster!.name, this.#endpoint!.authority, 'connection closed before a response'))
    } else if (this.#phase === 'response') {
      closeSoon(this.#down)
    }
  }

  #onDownstreamError = (err: Error): void => {
    this.#error ??= err
  }

  #onDownstreamClose = (): void => {
    this.#clearConnectTimer()
    this.#upstream?.destroy()
    this.#finish('downstream', this.#error)
  }

  /** Answers the client with the error's status (`Connection: close`) and closes both sides. */
  #fail (err: Error & { statusCode?: number, code?: string }): void {
    if (this.#phase === 'closed' || this.#phase === 'tunnel' || this.#phase === 'response') return
    this.#phase = 'closed'
    this.#error ??= err
    this.#clearConnectTimer()
    this.#upstream?.destroy()
    const status = err.statusCode ?? 502
    const log = this.#request!.log
    if (status >= 500) log.warn({ err, code: err.code }, 'legacy websocket: no pipe to the upstream')
    else log.info({ err, code: err.code }, 'legacy websocket: no pipe to the upstream')
    const down = this.#downstream!
    this.#stopReadingClient()
    if (this.#sentToClient || down.responseStarted || down.stream.destroyed) {
      down.stream.destroy()
      return
    }
    down.respond(status, { 'content-length': '0' })
    down.end()
  }

  #clearConnectTimer (): void {
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer)
    this.#connectTimer = undefined
    if (this.#answerTimer !== undefined) clearTimeout(this.#answerTimer)
    this.#answerTimer = undefined
  }

  /** No byte either way for `idleTimeout` ms before the answer: both sides close, as the Tunnel's idle timeout does. */
  #onAnswerIdle = (): void => {
    this.#answerTimer = undefined
    if (this.#phase !== 'handshake') return
    this.#core.stats.inc('downstream_rq_idle_timeout')
    this.#finish('idle_timeout', this.#error)
    this.#upstream?.destroy()
    this.#down.destroy()
  }

  #finish (reason: string, error: Error | undefined): void {
    if (this.#finished) return
    this.#finished = true
    this.#phase = 'closed'
    const core = this.#core
    core.stats.dec('downstream_cx_websocket_active')
    core.streams.delete(this)
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

/** A fresh TCP (or TLS) connection to the endpoint; half-open so a client's FIN is carried, not answered. */
function connect (cluster: Cluster, endpoint: Endpoint): Duplex {
  if (endpoint.secure) {
    return tls.connect({
      host: endpoint.host,
      port: endpoint.port,
      servername: net.isIP(endpoint.host) === 0 ? endpoint.host : undefined,
      ALPNProtocols: ['http/1.1'],
      ...cluster.tls,
      // Not in tls' typings; honoured by net.Socket.
      ...{ allowHalfOpen: true }
    } as tls.ConnectionOptions)
  }
  return net.connect({ host: endpoint.host, port: endpoint.port, allowHalfOpen: true, noDelay: true })
}
