import type { Duplex, Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import type { CloseReason, Filter } from './filter/filter.js'
import { FilterChain, type ChainOwner, type ChainSink } from './filter/filter-chain.js'
import { addForwardingHeaders, firstValue, headersFromRaw, headerTokens, sanitizeUpgradeRequestHeaders, type Headers } from './headers.js'
import { rewriteHost, rewritePath } from './route-action.js'
import { Tunnel, type TunnelSink } from './tunnel.js'
import type { Downstream } from './downstream.js'
import type { AppState } from './app-state.js'
import type { RouteState } from './route-state.js'
import type { Cluster } from './cluster/cluster.js'
import type { Host } from './cluster/host.js'
import { hashInputOf, Router, type Attempt, type AttemptEvents, type RouterFailure } from './router/router.js'
import { routeTimeout } from './router/retry-policy.js'
import { tunnelCloseChannel, upgradeStartChannel } from './diagnostics.js'
import { StreamTimeouts, timeoutBody } from './stream-timeouts.js'
import { TcpConnectTransport } from './transport/tcp-connect.js'
import { FrameBoundary, WebSocketGoingAway } from './websocket-going-away.js'
import { SwyUpstreamProtocolError } from './errors.js'

const EMPTY = Buffer.alloc(0)
/** A CONNECT terminated here: the TCP connection to the endpoint is the upstream (Envoy's `connect_config`). */
const terminated = new TcpConnectTransport()

type Phase = 'handshake' | 'tunnel' | 'response' | 'closed'

/**
 * One upgrade, from the request head to the end of its tunnel (Envoy's `ActiveStream` with its router):
 * request headers and every client byte go through the filter chain to the router, which holds the
 * bytes until the upstream accepts (CVE-2026-73548: early bytes are never parsed upstream as a request),
 * then a `Tunnel` carries payload both ways, still through the chain when a filter watches data.
 */
export class UpgradeStream implements ChainOwner {
  readonly chain: FilterChain
  readonly #core: AppState
  readonly #route: RouteState
  readonly #request: FastifyRequest
  readonly #downstream: Downstream
  readonly #upgradeType: string
  /** A CONNECT's target (`host:port`); undefined for any other upgrade. */
  readonly #authority: string | undefined
  /** The status that opened the tunnel: 101, or a CONNECT's 2xx. */
  #acceptStatus = 101
  #phase: Phase = 'handshake'
  /** A WebSocket tunnel's frame boundaries on the wire, each way: where a close frame may go at shutdown. */
  #frames: { toUpstream: FrameBoundary, toDownstream: FrameBoundary } | undefined
  /** Shutting down gracefully: close frames sent, nothing more relayed. */
  #goingAway = false
  #tunnel: Tunnel | undefined
  #upstreamSocket: Duplex | undefined
  /** The body of a non-101 answer being relayed: let go of (and its connection closed) when the stream ends. */
  #responseBody: Readable | undefined
  readonly #router: Router
  #held: Buffer[] = []
  #heldBytes = 0
  #heldEnd = false
  #requestHeaders: Headers | undefined
  #holds = 0
  #bytesIn = 0
  #bytesOut = 0
  #closeError: Error | undefined
  /** Who ended a stream that closed before a tunnel: the client, the upstream's answer, or a local reply. */
  #endReason: CloseReason = 'downstream'

  constructor (core: AppState, route: RouteState, request: FastifyRequest, downstream: Downstream, upgradeType: string, filters: readonly Filter[], authority?: string) {
    this.#core = core
    this.#route = route
    this.#request = request
    this.#downstream = downstream
    this.#upgradeType = upgradeType
    this.#authority = upgradeType === 'connect' ? authority : undefined
    this.#router = new Router({
      app: core,
      upstream: route.upstream!,
      // Envoy's route timeout covers an upgrade until its 101 (15 s by default; 0 disables it).
      timeout: routeTimeout(route.upstream),
      // An HTTP/1.1 upgrade holds its own connection for the tunnel's life; over HTTP/2 a tunnel is a
      // stream on a pooled connection (RFC 8441): it holds a request, not a connection.
      connectionPerAttempt: (cluster) => cluster.protocol === 'http1',
      log: request.log,
      owner: this,
      hashOf: route.hashOf,
      hashInput: () => hashInputOf(request)
    })
    this.chain = new FilterChain({
      filters,
      upgradeType,
      route: { url: route.url, method: route.method },
      request,
      log: request.log,
      owner: this,
      upstreamSink: this.#routerSink,
      downstreamSink: this.#downstreamSink,
      highWaterMark: core.highWaterMark
    })
  }

  /** Sends the request head and any early bytes into the chain, and starts reading the client. */
  start (): void {
    const core = this.#core
    core.streams.add(this)
    core.stats.inc('downstream_cx_upgrades_total')
    core.stats.inc('downstream_cx_upgrades_active')
    core.stats.upgrade(this.#upgradeType, 'downstream_cx_upgrades_total')
    core.stats.upgrade(this.#upgradeType, 'downstream_cx_upgrades_active')
    if (upgradeStartChannel.hasSubscribers) {
      upgradeStartChannel.publish({ upgradeType: this.#upgradeType, method: this.#request.method, url: this.#request.url, route: this.#route.url })
    }

    const down = this.#downstream.stream
    // Reset while the hooks ran (an HTTP/2 RST_STREAM, a socket error): its 'close' has already fired, so
    // nothing would end this stream. Envoy opens no upstream connection for a stream reset before its request.
    if (down.destroyed) {
      this.#finish(this.#closeError, 'downstream')
      return
    }
    down.on('error', this.#onDownstreamError)
    down.on('close', this.#onDownstreamClose)
    down.on('data', this.#onEarlyData)
    down.on('end', this.#onEarlyEnd)

    const raw = this.#request.raw
    const headers = headersFromRaw(raw.rawHeaders)
    // Pseudo-headers of an HTTP/2 downstream never travel as header lines (RFC 9113 §8.3).
    for (const key in headers) if (key.startsWith(':')) delete headers[key]
    if (this.#downstream.protocol === 'http1') sanitizeUpgradeRequestHeaders(headers)
    if (this.#authority !== undefined) {
      // A CONNECT has no Upgrade: its Connection header and the fields it names are this hop's only
      // (RFC 9110 §7.6.1); it has no content either (checked before routing).
      for (const token of headerTokens(headers.connection)) delete headers[token]
      delete headers.connection
      delete headers['content-length']
    }
    addForwardingHeaders(headers, raw.socket?.remoteAddress, (raw.socket as { encrypted?: boolean } | undefined)?.encrypted === true ? 'https' : 'http')
    this.chain.requestHeaders(headers, false)
    if (this.#downstream.head.length > 0 && this.#phase !== 'closed') this.#onEarlyData(this.#downstream.head)
    if (down.readableEnded) this.#onEarlyEnd()
  }

  // ---- downstream, before the tunnel exists -------------------------------------------------------

  #onEarlyData = (chunk: Buffer): void => {
    this.#bytesIn += chunk.length
    if (!this.chain.requestData(chunk, false)) this.#downstream.stream.pause()
  }

  #onEarlyEnd = (): void => {
    // Envoy's HTTP/1 codec closes the stream when the client goes away before the upgrade completes:
    // nothing is left to answer, and the pending upstream connection must not leak.
    if (this.#phase === 'handshake' && this.#downstream.protocol === 'http1') {
      this.destroy()
      return
    }
    this.chain.requestData(EMPTY, true)
  }

  #onDownstreamError = (err: Error): void => {
    this.#closeError ??= err
  }

  #onDownstreamClose = (): void => {
    if (this.#phase === 'tunnel') return // the tunnel carries it
    this.#finish(this.#closeError, this.#endReason)
  }

  // ---- the router: the request direction's sink ----------------------------------------------------

  #routerSink: ChainSink = {
    headers: (_status, headers) => {
      this.#requestHeaders = headers
      this.#router.start()
    },
    data: (chunk, end) => {
      const up = this.#upstreamSocket
      if (up !== undefined) {
        if (this.#goingAway) return true
        this.#frames?.toUpstream.note(chunk)
        if (end) { if (chunk.length > 0) up.write(chunk); up.end(); return true }
        return up.write(chunk)
      }
      // Held until the upstream accepts; dropped if it never does.
      if (chunk.length > 0) {
        this.#held.push(chunk)
        this.#heldBytes += chunk.length
      }
      if (end) this.#heldEnd = true
      return this.#heldBytes < this.#core.highWaterMark
    }
  }

  // ---- RouterOwner: one attempt on one endpoint -------------------------------------------------------

  openAttempt (cluster: Cluster, host: Host, _attempt: number, events: AttemptEvents): Attempt {
    const core = this.#core
    // A terminated CONNECT opens TCP to the endpoint, whatever the cluster's protocol; a forwarded one is
    // sent as a CONNECT on the cluster's transport (HTTP/1.1, or HTTP/2 with h2-connect).
    const transport = this.#authority !== undefined && this.#route.connectConfig !== undefined ? terminated : core.transport(cluster.protocol)
    if (transport === undefined) {
      events.failed('protocol', new SwyUpstreamProtocolError(cluster.name, `no transport for protocol ${cluster.protocol} (is @switchyard/h2-connect registered?)`))
      return { abort: noop }
    }
    const upstream = this.#route.upstream!
    const endpoint = host.endpoint
    const headers = { ...this.#requestHeaders! }
    rewriteHost(headers, upstream, endpoint)
    let path = rewritePath(this.#request.raw.url ?? '/', this.#route.prefix, upstream.prefixRewrite)
    if (this.#authority !== undefined) {
      // A forwarded CONNECT asks for the target the client named (or the route's host rewrite of it); where
      // it goes is still only the route's cluster (never an open proxy).
      path = upstream.hostRewrite !== undefined || upstream.autoHostRewrite === true ? String(firstValue(headers.host)) : this.#authority
      headers.host = path
    }
    // Every upstream connection of an upgrade is destroyed when it ends: none is ever reused.
    const destroyed = new DestroyCount(core, cluster.name)
    const pending = transport.open({
      cluster, endpoint, method: this.#authority !== undefined ? 'CONNECT' : this.#request.raw.method ?? 'GET', path, upgradeType: this.#upgradeType, headers
    }, {
      accepted: (resHeaders, socket, head, status = 101) => {
        if (!events.answered(status)) { socket.destroy(); return }
        socket.once('close', destroyed.count)
        this.#onAccepted(resHeaders, socket, head, status)
      },
      response: (status, resHeaders, body) => {
        // A 4xx/5xx is an ordinary response (Envoy may pool its connection: no upstream_cx_destroy); any
        // other non-101 answer to an upgrade costs the connection. Ours is closed either way, never reused.
        if (status < 400 || status > 599) body.once('close', destroyed.count)
        if (!events.answered(status)) { body.destroy(); return }
        this.#onResponse(status, resHeaders, body)
      },
      failed: (error, phase) => {
        if (phase === 'reset') destroyed.count()
        events.failed(phase === 'connect' ? 'connect-failure' : phase, error)
      }
    })
    return {
      abort: () => {
        destroyed.count()
        pending.abort()
      }
    }
  }

  routerFailed (failure: RouterFailure): void {
    if (this.#phase !== 'handshake') return
    const { error } = failure
    if (failure.kind === 'connect-failure' || failure.kind === 'reset') {
      this.#request.log.warn({ err: error, code: error.code }, 'upstream connection failed')
    }
    this.#closeError ??= error
    this.chain.responseFlags = failure.responseFlag
    const body = failure.body === '' ? undefined : Buffer.from(failure.body)
    const headers: Record<string, string> = { ...failure.headers }
    if (body !== undefined) headers['content-type'] = 'text/plain'
    this.localReply(this.chain.filters.length, failure.status, body, headers)
  }

  #onResponse (status: number, headers: Headers, body: Readable): void {
    if (this.#phase !== 'handshake') { body.destroy(); return }
    if (status === 101) {
      // A 101 the parser did not take as an upgrade (no Upgrade header): nothing to tunnel.
      body.destroy()
      this.#localFailure(new SwyUpstreamProtocolError(this.#router.cluster!.name, '101 without an Upgrade header'))
      return
    }
    // Not an upgrade: relayed as an ordinary response; held client bytes are dropped, none are read again.
    this.#phase = 'response'
    this.#endReason = 'upstream'
    this.#responseBody = body
    this.#dropHeld()
    const down = this.#downstream.stream
    down.removeListener('data', this.#onEarlyData)
    down.pause()
    this.#router.decorateResponse(headers)
    this.chain.responseHeaders(status, headers, false)
    body.on('data', (chunk: Buffer) => {
      if (!this.chain.responseData(chunk, false)) body.pause()
    })
    body.on('end', () => this.chain.responseData(EMPTY, true))
    body.on('error', (err) => this.destroy(err))
    down.on('drain', () => body.resume())
  }

  #onAccepted (headers: Headers, socket: Duplex, head: Buffer, status: number): void {
    socket.on('error', noop)
    if (this.#phase !== 'handshake') { socket.destroy(); return }
    const core = this.#core
    // RFC 9110 §7.8: the 101 names the protocol switched to; another one than requested is not tunnelled.
    // A CONNECT's 2xx names none (RFC 9110 §9.3.6).
    const switchedTo = this.#authority !== undefined ? 'connect' : firstValue(headers.upgrade)?.trim().toLowerCase()
    if (switchedTo !== this.#upgradeType) {
      socket.destroy()
      this.#localFailure(new SwyUpstreamProtocolError(this.#router.cluster!.name, `101 switched to "${switchedTo ?? ''}", not "${this.#upgradeType}"`))
      return
    }
    this.#phase = 'tunnel'
    this.#acceptStatus = status
    this.#upstreamSocket = socket
    // A tunnel now: the route's idleTimeout governs it, not the stream timeouts.
    StreamTimeouts.of(this.#request.raw)?.stop()
    if (this.#upgradeType === 'websocket') this.#frames = { toUpstream: new FrameBoundary(), toDownstream: new FrameBoundary() }
    // The upgrade is accepted: the held bytes go first, in order.
    for (const chunk of this.#held) {
      this.#frames?.toUpstream.note(chunk)
      socket.write(chunk)
    }
    if (this.#heldEnd) socket.end()
    this.#dropHeld()

    const down = this.#downstream.stream
    const chain = this.chain
    // A chain that does not look at data is bypassed: the tunnel writes straight into the far side.
    const toUpstream: TunnelSink | undefined = chain.requestDataPassthrough
      ? undefined
      : { write: (c) => chain.requestData(c, false), end: () => { chain.requestData(EMPTY, true) }, buffered: true }
    this.#router.decorateResponse(headers)
    chain.responseHeaders(status, headers, false)
    // A filter may answer the 101 with a local reply: the stream then ends through its close listener.
    if (this.#phase !== 'tunnel') { socket.destroy(); return }
    down.removeListener('data', this.#onEarlyData)
    down.removeListener('end', this.#onEarlyEnd)
    down.removeListener('close', this.#onDownstreamClose)
    const toDownstream: TunnelSink | undefined = chain.responseDataPassthrough
      ? undefined
      : { write: (c) => chain.responseData(c, false), end: () => { chain.responseData(EMPTY, true) }, buffered: true }
    if (head.length > 0) {
      this.#bytesOut += head.length
      if (toDownstream === undefined) {
        this.#frames?.toDownstream.note(head)
        down.write(head)
      } else {
        toDownstream.write(head)
      }
    }
    this.#tunnel = new Tunnel(down, socket, {
      idleTimeout: this.#route.upstream?.idleTimeout,
      toUpstream,
      toDownstream,
      watchUpstream: this.#frames?.toUpstream,
      watchDownstream: this.#frames?.toDownstream,
      onClose: (reason, error) => {
        if (reason === 'idle_timeout') core.stats.inc('downstream_rq_idle_timeout')
        this.#finish(error ?? this.#closeError, reason)
      }
    })
    if (this.#holds > 0) this.#tunnel.hold()
  }

  #dropHeld (): void {
    this.#held = []
    this.#heldBytes = 0
  }

  // ---- the response direction's sink: the downstream ------------------------------------------------

  #downstreamSink: ChainSink = {
    headers: (status, headers) => {
      if (this.#phase === 'tunnel' && status === this.#acceptStatus) {
        if (this.#downstream.responseStarted) return
        this.#downstream.accept(headers, status)
      } else {
        this.#downstream.respond(status, headers)
      }
    },
    data: (chunk, end) => {
      if (this.#goingAway) return true
      if (this.#phase === 'tunnel') this.#frames?.toDownstream.note(chunk)
      if (!end) {
        this.#bytesOut += chunk.length
        return this.#downstream.write(chunk)
      }
      if (this.#phase === 'tunnel') {
        if (chunk.length > 0) this.#downstream.write(chunk)
        this.#downstream.stream.end()
      } else {
        this.#downstream.end(chunk.length > 0 ? chunk : undefined)
      }
      return true
    }
  }

  // ---- ChainOwner -------------------------------------------------------------------------------------

  /** An answer of our own; before any response has started, else the stream just closes. */
  localReply (fromFilter: number, status: number, body: Buffer | undefined, headers: Record<string, string>): void {
    if (this.#phase === 'closed') return
    this.#router.release()
    if (this.#downstream.responseStarted) {
      this.destroy()
      return
    }
    this.#phase = 'response'
    this.#endReason = 'destroyed'
    this.#dropHeld()
    const down = this.#downstream.stream
    down.removeListener('data', this.#onEarlyData)
    down.pause()
    this.#upstreamSocket?.destroy()
    const h: Headers = { ...lowerKeys(headers) }
    const payload = this.chain.localResponse(fromFilter, status, h, body ?? EMPTY)
    h['content-length'] = String(payload.length)
    this.#downstream.respond(status, h)
    this.#downstream.end(payload.length > 0 ? payload : undefined)
  }

  /** `streamIdleTimeout` or `requestTimeout` before the answer: 408, and the upstream attempt is given up. */
  timeoutReply (error: Error & { statusCode: number, code: string }): void {
    if (this.#phase !== 'handshake') {
      this.destroy(error)
      return
    }
    this.#closeError ??= error
    this.localReply(this.chain.filters.length, error.statusCode, Buffer.from(timeoutBody(error)), { 'content-type': 'text/plain' })
  }

  #localFailure (err: Error & { statusCode?: number }): void {
    this.#closeError ??= err
    this.localReply(this.chain.filters.length, err.statusCode ?? 502, undefined, {})
  }

  abort (error: Error): void {
    this.destroy(error)
  }

  pause (): void {
    this.#holds++
    if (this.#tunnel !== undefined) this.#tunnel.hold()
    else this.#downstream.stream.pause()
  }

  resume (): void {
    if (this.#holds > 0) this.#holds--
    if (this.#tunnel !== undefined) this.#tunnel.release()
    else if (this.#holds === 0 && this.#phase === 'handshake') this.#downstream.stream.resume()
  }

  drained (direction: 'request' | 'response'): void {
    if (this.#tunnel !== undefined) this.#tunnel.resumeReading()
    else if (direction === 'request' && this.#holds === 0 && this.#phase === 'handshake') this.#downstream.stream.resume()
  }

  /**
   * Shutdown at the end of the grace period: a WebSocket tunnel gets close frames (1001, going away) both
   * ways and its peers a short while to answer; any other stream is destroyed at once.
   */
  goAway (error: Error): void {
    const tunnel = this.#tunnel
    const frames = this.#frames
    if (tunnel === undefined || frames === undefined || tunnel.closed || this.#phase !== 'tunnel') {
      this.destroy(error)
      return
    }
    if (this.#goingAway) return
    this.#goingAway = true
    this.#closeError ??= error
    tunnel.detach()
    new WebSocketGoingAway({
      downstream: tunnel.downstream,
      upstream: tunnel.upstream,
      toDownstream: frames.toDownstream,
      toUpstream: frames.toUpstream,
      onDone: () => this.#finish(this.#closeError, 'destroyed')
    }).start()
  }

  /** Ends the stream at once (shutdown, filter abort, errors). */
  destroy (error?: Error): void {
    if (this.#phase === 'closed') return
    this.#closeError ??= error
    this.#router.release()
    if (this.#tunnel !== undefined) {
      this.#tunnel.destroy(error)
      return
    }
    this.#upstreamSocket?.destroy()
    this.#downstream.destroy()
    this.#finish(this.#closeError, 'destroyed')
  }

  #finish (error: Error | undefined, reason: CloseReason): void {
    if (this.#phase === 'closed') return
    this.#phase = 'closed'
    this.#router.release()
    this.#dropHeld()
    // A client gone mid-relay (or cut off) must not leave the upstream connection paused behind it.
    if (this.#responseBody !== undefined && !this.#responseBody.readableEnded) this.#responseBody.destroy()
    this.#responseBody = undefined
    const core = this.#core
    core.streams.delete(this)
    core.stats.dec('downstream_cx_upgrades_active')
    core.stats.upgrade(this.#upgradeType, 'downstream_cx_upgrades_active', -1)
    this.chain.close(error, reason)
    if (this.#downstream.stream.destroyed === false && this.#tunnel === undefined && !this.#downstream.responseStarted) {
      this.#downstream.destroy()
    }
    if (tunnelCloseChannel.hasSubscribers) {
      const t = this.#tunnel
      tunnelCloseChannel.publish({
        upgradeType: this.#upgradeType,
        bytesFromDownstream: this.#bytesIn + (t?.bytesFromDownstream ?? 0),
        bytesFromUpstream: this.#bytesOut + (t?.bytesFromUpstream ?? 0),
        reason,
        error
      })
    }
  }
}

/**
 * Counts `upstream_cx_destroy` once for one upstream connection. An object of its own, not a closure of
 * `openAttempt`: a listener left on a tunnel's socket must not keep the attempt's HTTP exchange alive.
 */
class DestroyCount {
  #done = false
  constructor (readonly app: AppState, readonly cluster: string) {}
  count = (): void => {
    if (this.#done) return
    this.#done = true
    this.app.stats.cluster(this.cluster, 'upstream_cx_destroy')
  }
}

function lowerKeys (headers: Record<string, string>): Headers {
  const out: Headers = {}
  for (const key in headers) out[key.toLowerCase()] = headers[key]!
  return out
}

function noop (): void {}
