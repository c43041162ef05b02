import diagnostics from 'node:diagnostics_channel'
import type { Duplex, Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import type { CloseReason, Filter } from './filter/filter.js'
import { FilterChain, type ChainOwner, type ChainSink } from './filter/filter-chain.js'
import { addForwardingHeaders, firstValue, headersFromRaw, sanitizeUpgradeRequestHeaders, type Headers } from './headers.js'
import { chooseCluster, rewriteHost, rewritePath } from './route-action.js'
import { Tunnel, streamSink, type TunnelSink } from './tunnel.js'
import type { Downstream } from './downstream.js'
import type { RouteState, SwitchyardCore } from './core.js'
import type { Cluster } from './cluster.js'
import type { PendingUpgrade } from './transport/transport.js'
import {
  SwyNoHealthyUpstreamError, SwyUpstreamConnectError, SwyUpstreamProtocolError, SwyUpstreamTimeoutError
} from './errors.js'

export const upgradeStartChannel = diagnostics.channel('switchyard:upgrade:start')
export const tunnelCloseChannel = diagnostics.channel('switchyard:tunnel:close')

const EMPTY = Buffer.alloc(0)
const defaultRetryOn = ['connect-failure', 'reset', '5xx']

type Phase = 'handshake' | 'tunnel' | 'response' | 'closed'

/**
 * One upgrade, from the request head to the end of its tunnel (Envoy's `ActiveStream` with its router):
 * request headers and every client byte go through the filter chain to the router, which holds the
 * bytes until the upstream accepts (CVE-2026-73548: early bytes are never parsed upstream as a request),
 * then a `Tunnel` carries payload both ways, still through the chain when a filter watches data.
 */
/** Envoy's default route timeout, applied to the handshake when a route sets none (ms). */
const DEFAULT_HANDSHAKE_TIMEOUT = 15_000

export class UpgradeStream implements ChainOwner {
  readonly chain: FilterChain
  readonly #core: SwitchyardCore
  readonly #route: RouteState
  readonly #request: FastifyRequest
  readonly #downstream: Downstream
  readonly #upgradeType: string
  #phase: Phase = 'handshake'
  #tunnel: Tunnel | undefined
  #upstreamSocket: Duplex | undefined
  #pending: PendingUpgrade | undefined
  #releasePending: (() => void) | undefined
  #held: Buffer[] = []
  #heldBytes = 0
  #heldEnd = false
  #requestHeaders: Headers | undefined
  #cluster: Cluster | undefined
  #attempt = 0
  #timer: NodeJS.Timeout | undefined
  #holds = 0
  #bytesIn = 0
  #bytesOut = 0
  #closeError: Error | undefined
  /** Who ended a stream that closed before a tunnel: the client, the upstream's answer, or a local reply. */
  #endReason: CloseReason = 'downstream'

  constructor (core: SwitchyardCore, route: RouteState, request: FastifyRequest, downstream: Downstream, upgradeType: string, filters: readonly Filter[]) {
    this.#core = core
    this.#route = route
    this.#request = request
    this.#downstream = downstream
    this.#upgradeType = upgradeType
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
    core.stats.inc(`upgrade.${this.#upgradeType}.downstream_cx_upgrades_total`)
    core.stats.inc(`upgrade.${this.#upgradeType}.downstream_cx_upgrades_active`)
    if (upgradeStartChannel.hasSubscribers) {
      upgradeStartChannel.publish({ upgradeType: this.#upgradeType, method: this.#request.method, url: this.#request.url, route: this.#route.url })
    }

    const down = this.#downstream.stream
    down.on('error', this.#onDownstreamError)
    down.on('close', this.#onDownstreamClose)
    down.on('data', this.#onEarlyData)
    down.on('end', this.#onEarlyEnd)

    const raw = this.#request.raw
    const headers = headersFromRaw(raw.rawHeaders)
    // Pseudo-headers of an HTTP/2 downstream never travel as header lines (RFC 9113 §8.3).
    for (const key in headers) if (key.startsWith(':')) delete headers[key]
    if (this.#downstream.protocol === 'http1') sanitizeUpgradeRequestHeaders(headers)
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
      this.#armTimeout()
      this.#connect()
    },
    data: (chunk, end) => {
      const up = this.#upstreamSocket
      if (up !== undefined) {
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

  #armTimeout (): void {
    // Envoy's route timeout defaults to 15 s and covers an upgrade until its 101; 0 disables it.
    const timeout = this.#route.upstream?.timeout ?? DEFAULT_HANDSHAKE_TIMEOUT
    if (timeout === 0) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (this.#phase !== 'handshake') return
      const cluster = this.#cluster?.name ?? '?'
      this.#core.stats.cluster(cluster, 'upstream_rq_timeout')
      this.#abortPending()
      this.#pending = undefined
      this.#localFailure(new SwyUpstreamTimeoutError(cluster, timeout))
    }, timeout)
  }

  #disarmTimeout (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #connect (): void {
    const upstream = this.#route.upstream!
    const core = this.#core
    const name = chooseCluster(upstream, core.runtime)
    const cluster = name === undefined ? undefined : core.clusters.get(name)
    if (cluster === undefined || cluster.endpoints.length === 0) {
      this.#localFailure(new SwyNoHealthyUpstreamError(name ?? '(none)'))
      return
    }
    this.#cluster = cluster
    const transport = core.transports.get(cluster.protocol)
    if (transport === undefined) {
      this.#localFailure(new SwyUpstreamProtocolError(cluster.name, `no transport for protocol ${cluster.protocol} (is @switchyard/h2-connect registered?)`))
      return
    }
    const endpoint = cluster.pick()
    const headers = { ...this.#requestHeaders! }
    rewriteHost(headers, upstream, endpoint)
    const path = rewritePath(this.#request.raw.url ?? '/', this.#route.prefix, upstream.prefixRewrite)
    core.stats.cluster(cluster.name, 'upstream_rq_total')
    core.stats.cluster(cluster.name, 'upstream_cx_total')
    core.stats.cluster(cluster.name, 'upstream_cx_active')
    let counted = true
    // Every upstream connection of an upgrade is destroyed when it ends: none is ever reused.
    const release = (connected = true): void => {
      if (!counted) return
      counted = false
      core.stats.cluster(cluster.name, 'upstream_cx_active', -1)
      if (connected) core.stats.cluster(cluster.name, 'upstream_cx_destroy')
    }
    this.#releasePending = () => release()
    this.#pending = transport.open({
      cluster, endpoint, method: this.#request.raw.method ?? 'GET', path, upgradeType: this.#upgradeType, headers
    }, {
      accepted: (resHeaders, socket, head) => {
        this.#pending = undefined
        this.#releasePending = undefined
        socket.once('close', () => release())
        this.#onAccepted(resHeaders, socket, head)
      },
      response: (status, resHeaders, body) => {
        this.#pending = undefined
        this.#releasePending = undefined
        // A 4xx/5xx is an ordinary response (Envoy may pool its connection: no upstream_cx_destroy); any
        // other non-101 answer to an upgrade costs the connection. Ours is closed either way, never reused.
        body.once('close', () => release(status < 400 || status > 599))
        this.#onResponse(status, resHeaders, body)
      },
      failed: (error, phase) => {
        this.#pending = undefined
        this.#releasePending = undefined
        release(phase !== 'connect')
        this.#onFailed(error, phase, endpoint.authority)
      }
    })
  }

  /** Gives up on the attempt in flight; its connection is destroyed and counted. */
  #abortPending (): void {
    this.#pending?.abort()
    this.#pending = undefined
    this.#releasePending?.()
    this.#releasePending = undefined
  }

  #retryOn (kind: string): boolean {
    const retries = this.#route.upstream?.retries
    if (retries === undefined || this.#attempt >= retries.numRetries || this.#phase !== 'handshake') return false
    return (retries.retryOn ?? defaultRetryOn).includes(kind)
  }

  #retry (): void {
    this.#attempt++
    this.#core.stats.cluster(this.#cluster!.name, 'upstream_rq_retry')
    this.#connect()
  }

  #onFailed (error: Error, phase: 'connect' | 'reset', authority: string): void {
    if (this.#phase !== 'handshake') return
    const cluster = this.#cluster!.name
    if (phase === 'connect') this.#core.stats.cluster(cluster, 'upstream_cx_connect_fail')
    if (this.#retryOn(phase === 'connect' ? 'connect-failure' : 'reset')) { this.#retry(); return }
    const err = new SwyUpstreamConnectError(cluster, authority, error.message)
    err.cause = error
    this.#request.log.warn({ err, code: err.code }, 'upstream connection failed')
    this.#localFailure(err)
  }

  #onResponse (status: number, headers: Headers, body: Readable): void {
    if (this.#phase !== 'handshake') { body.destroy(); return }
    const cluster = this.#cluster!.name
    if (status === 101) {
      // A 101 the parser did not take as an upgrade (no Upgrade header): nothing to tunnel.
      body.destroy()
      this.#localFailure(new SwyUpstreamProtocolError(cluster, '101 without an Upgrade header'))
      return
    }
    if (status >= 500 && this.#retryOn('5xx')) {
      body.destroy()
      this.#retry()
      return
    }
    this.#disarmTimeout()
    if (this.#attempt > 0) this.#core.stats.cluster(cluster, 'upstream_rq_retry_success')
    // Not an upgrade: relayed as an ordinary response; held client bytes are dropped, none are read again.
    this.#phase = 'response'
    this.#endReason = 'upstream'
    this.#dropHeld()
    const down = this.#downstream.stream
    down.removeListener('data', this.#onEarlyData)
    down.pause()
    this.chain.responseHeaders(status, headers, false)
    body.on('data', (chunk: Buffer) => {
      if (!this.chain.responseData(chunk, false)) body.pause()
    })
    body.on('end', () => this.chain.responseData(EMPTY, true))
    body.on('error', (err) => this.destroy(err))
    down.on('drain', () => body.resume())
  }

  #onAccepted (headers: Headers, socket: Duplex, head: Buffer): void {
    socket.on('error', noop)
    if (this.#phase !== 'handshake') { socket.destroy(); return }
    this.#disarmTimeout()
    const core = this.#core
    const cluster = this.#cluster!.name
    // RFC 9110 §7.8: the 101 names the protocol switched to; another one than requested is not tunnelled.
    const switchedTo = firstValue(headers.upgrade)?.trim().toLowerCase()
    if (switchedTo !== this.#upgradeType) {
      socket.destroy()
      this.#localFailure(new SwyUpstreamProtocolError(cluster, `101 switched to "${switchedTo ?? ''}", not "${this.#upgradeType}"`))
      return
    }
    if (this.#attempt > 0) core.stats.cluster(cluster, 'upstream_rq_retry_success')
    this.#phase = 'tunnel'
    this.#upstreamSocket = socket
    // The upgrade is accepted: the held bytes go first, in order.
    for (const chunk of this.#held) socket.write(chunk)
    if (this.#heldEnd) socket.end()
    this.#dropHeld()

    const down = this.#downstream.stream
    const chain = this.chain
    const toUpstream: TunnelSink = chain.requestDataPassthrough
      ? streamSink(socket)
      : { write: (c) => chain.requestData(c, false), end: () => { chain.requestData(EMPTY, true) }, buffered: true }
    chain.responseHeaders(101, headers, false)
    // A filter may answer the 101 with a local reply: the stream then ends through its close listener.
    if (this.#phase !== 'tunnel') { socket.destroy(); return }
    down.removeListener('data', this.#onEarlyData)
    down.removeListener('end', this.#onEarlyEnd)
    down.removeListener('close', this.#onDownstreamClose)
    const toDownstream: TunnelSink = chain.responseDataPassthrough
      ? streamSink(down)
      : { write: (c) => chain.responseData(c, false), end: () => { chain.responseData(EMPTY, true) }, buffered: true }
    if (head.length > 0) {
      this.#bytesOut += head.length
      toDownstream.write(head)
    }
    this.#tunnel = new Tunnel(down, socket, {
      idleTimeout: this.#route.upstream?.idleTimeout,
      toUpstream,
      toDownstream,
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
      if (status === 101) {
        if (this.#downstream.responseStarted) return
        this.#downstream.accept(headers)
      } else {
        this.#downstream.respond(status, headers)
      }
    },
    data: (chunk, end) => {
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
    this.#abortPending()
    this.#disarmTimeout()
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

  /** Ends the stream at once (shutdown, filter abort, errors). */
  destroy (error?: Error): void {
    if (this.#phase === 'closed') return
    this.#closeError ??= error
    this.#abortPending()
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
    this.#disarmTimeout()
    this.#abortPending()
    this.#dropHeld()
    const core = this.#core
    core.streams.delete(this)
    core.stats.dec('downstream_cx_upgrades_active')
    core.stats.dec(`upgrade.${this.#upgradeType}.downstream_cx_upgrades_active`)
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

function lowerKeys (headers: Record<string, string>): Headers {
  const out: Headers = {}
  for (const key in headers) out[key.toLowerCase()] = headers[key]!
  return out
}

function noop (): void {}
