import type { Duplex } from 'node:stream'

/** Sockets and HTTP/2 streams both offer an inactivity timer. */
type Timed = Duplex & { setTimeout?: (ms: number, cb?: () => void) => unknown }

/**
 * Where one direction's bytes go. `write` returns false when the far side wants no more for now (the
 * source is paused until `Tunnel#resumeReading`); `end` carries the half-close.
 */
export interface TunnelSink {
  write (chunk: Buffer): boolean
  end (): void
  /**
   * True when bytes may still be on their way inside the sink after `write` returns (a filter chain with
   * async data callbacks): the far side is then ended by this sink's `end`, never destroyed early.
   */
  readonly buffered?: boolean
}

/** Looks at every byte a tunnel writes straight into one side (e.g. where WebSocket frames begin). */
export interface WireWatch {
  note (chunk: Buffer): void
}

export interface TunnelOptions {
  /** Close both sides after this many ms without a byte either way (Envoy `idle_timeout`). */
  idleTimeout?: number
  /** Told of the bytes written straight into the upstream / the downstream (not those given to a sink). */
  watchUpstream?: WireWatch
  watchDownstream?: WireWatch
  /** Downstream → upstream; defaults to writing straight into `upstream`. */
  toUpstream?: TunnelSink
  /** Upstream → downstream; defaults to writing straight into `downstream`. */
  toDownstream?: TunnelSink
  /** Once, when both sides are closed. `reason` says who ended it. */
  onClose? (reason: TunnelCloseReason, error?: Error): void
}

export type TunnelCloseReason = 'downstream' | 'upstream' | 'idle_timeout' | 'destroyed'

/** Resets a socket (TCP RST) or an HTTP/2 stream (RST_STREAM CANCEL); destroys anything else. */
export function resetStream (stream: Duplex): void {
  const s = stream as Duplex & { resetAndDestroy?: () => void, close?: (code?: number) => void, rstCode?: number }
  // A socket whose writable side has ended cannot be reset (EINVAL, and no 'close' on Node 20).
  if (typeof s.resetAndDestroy === 'function' && !stream.writableEnded) s.resetAndDestroy()
  else if (typeof s.close === 'function' && 'rstCode' in s) s.close(8)
  else stream.destroy()
}

function isHttp2Stream (stream: Duplex): boolean {
  return 'rstCode' in stream
}

/** An HTTP/2 stream closed by RST_STREAM with an error code (not NO_ERROR). */
function wasReset (stream: Duplex): boolean {
  const code = (stream as { rstCode?: number }).rstCode
  return typeof code === 'number' && code !== 0
}

function endSink (sink: TunnelSink | undefined, far: Duplex): void {
  if (sink === undefined) far.end()
  else sink.end()
}

/** Writes into a stream and ends it: the default sink. */
export function streamSink (stream: Duplex): TunnelSink {
  return {
    write: (chunk) => stream.write(chunk),
    end: () => { stream.end() }
  }
}

/**
 * The one tunnel between a downstream and an upstream (ws `lib/stream.js`, Envoy's TCP proxy):
 * - backpressure both ways: a `false` from the sink pauses the source until the far side drains;
 * - half-close: `'end'` on one side ends the other's writable side only;
 * - a close or reset on one side ends the other after its pending writes are flushed, then destroys it.
 * At most about one high-water mark per direction is held in the process.
 */
const kTunnel = Symbol('switchyard.tunnel')

/** A tunnel's side: its stream, with the tunnel it belongs to under a symbol. */
type Side = Duplex & { [kTunnel]?: Tunnel }

export class Tunnel {
  readonly downstream: Duplex
  readonly upstream: Duplex
  bytesFromDownstream = 0
  bytesFromUpstream = 0
  closed = false
  /** Where each direction's bytes go; undefined: straight into the far side's stream. */
  #toUpstream: TunnelSink | undefined
  #toDownstream: TunnelSink | undefined
  #onClose: TunnelOptions['onClose']
  readonly #watchUp: WireWatch | undefined
  readonly #watchDown: WireWatch | undefined
  #reason: TunnelCloseReason | undefined
  #error: Error | undefined
  #holds = 0
  #open = 2

  constructor (downstream: Duplex, upstream: Duplex, opts: TunnelOptions = {}) {
    this.downstream = downstream
    this.upstream = upstream
    this.#toUpstream = opts.toUpstream
    this.#toDownstream = opts.toDownstream
    this.#onClose = opts.onClose
    this.#watchUp = opts.watchUpstream
    this.#watchDown = opts.watchDownstream
    ;(downstream as Side)[kTunnel] = this
    ;(upstream as Side)[kTunnel] = this

    // Listeners shared by every tunnel (the stream is `this`, its tunnel under a symbol): an idle tunnel
    // holds no closures of its own.
    downstream.on('data', Tunnel.#onDownstreamData)
    upstream.on('data', Tunnel.#onUpstreamData)
    // The far side drained: read again (unless a filter holds the stream).
    upstream.on('drain', Tunnel.#onUpstreamDrain)
    downstream.on('drain', Tunnel.#onDownstreamDrain)
    // Half-close carried (RFC 9293 FIN, RFC 9113 END_STREAM): end only the other side's writable half.
    downstream.on('end', Tunnel.#onDownstreamEnd)
    upstream.on('end', Tunnel.#onUpstreamEnd)
    downstream.on('error', Tunnel.#onDownstreamError)
    upstream.on('error', Tunnel.#onUpstreamError)
    downstream.on('close', Tunnel.#onDownstreamClose)
    upstream.on('close', Tunnel.#onUpstreamClose)

    if (opts.idleTimeout !== undefined && opts.idleTimeout > 0) {
      // Every byte either way crosses the downstream, so its inactivity is the tunnel's.
      (downstream as Timed).setTimeout?.(opts.idleTimeout, Tunnel.#onIdle)
    }
    if (downstream.isPaused()) downstream.resume()
    if (upstream.isPaused()) upstream.resume()
  }

  static #onDownstreamData (this: Side, chunk: Buffer): void {
    const t = this[kTunnel]!
    t.bytesFromDownstream += chunk.length
    const sink = t.#toUpstream
    if (sink === undefined) t.#watchUp?.note(chunk)
    if (!(sink === undefined ? t.upstream.write(chunk) : sink.write(chunk))) this.pause()
  }

  static #onUpstreamData (this: Side, chunk: Buffer): void {
    const t = this[kTunnel]!
    t.bytesFromUpstream += chunk.length
    const sink = t.#toDownstream
    if (sink === undefined) t.#watchDown?.note(chunk)
    if (!(sink === undefined ? t.downstream.write(chunk) : sink.write(chunk))) this.pause()
  }

  static #onUpstreamDrain (this: Side): void {
    const t = this[kTunnel]!
    t.#resume(t.downstream)
  }

  static #onDownstreamDrain (this: Side): void {
    const t = this[kTunnel]!
    t.#resume(t.upstream)
  }

  static #onDownstreamEnd (this: Side): void {
    const t = this[kTunnel]!
    t.#halfClosed(t.downstream, t.#toUpstream, t.upstream)
  }

  static #onUpstreamEnd (this: Side): void {
    const t = this[kTunnel]!
    t.#halfClosed(t.upstream, t.#toDownstream, t.downstream)
  }

  static #onDownstreamError (this: Side, err: Error): void {
    this[kTunnel]!.#noteError('downstream', err)
  }

  static #onUpstreamError (this: Side, err: Error): void {
    this[kTunnel]!.#noteError('upstream', err)
  }

  static #onDownstreamClose (this: Side): void {
    const t = this[kTunnel]!
    t.#sideClosed('downstream', t.upstream)
  }

  static #onUpstreamClose (this: Side): void {
    const t = this[kTunnel]!
    t.#sideClosed('upstream', t.downstream)
  }

  static #onIdle (this: Side): void {
    this[kTunnel]!.destroy(undefined, 'idle_timeout')
  }

  /** Stop reading both sides (a filter's `ctx.pause()`); counted, so nested holds are safe. */
  hold (): void {
    this.#holds++
    this.downstream.pause()
    this.upstream.pause()
  }

  release (): void {
    if (this.#holds > 0) this.#holds--
    this.resumeReading()
  }

  /** Read again from whichever side is not blocked by its far side. */
  resumeReading (): void {
    this.#resume(this.downstream)
    this.#resume(this.upstream)
  }

  #resume (source: Duplex): void {
    if (this.#holds > 0 || this.closed) return
    const far = source === this.downstream ? this.upstream : this.downstream
    if (far.writableNeedDrain) return
    source.resume()
  }

  #reset: 'downstream' | 'upstream' | undefined

  #halfClosed (source: Duplex, sink: TunnelSink | undefined, far: Duplex): void {
    if (!isHttp2Stream(source)) { endSink(sink, far); return }
    // Node ends an HTTP/2 stream's readable side before it reports a peer's RST_STREAM: wait a turn,
    // so a reset is carried as a reset rather than as a half-close.
    setImmediate(() => {
      if (wasReset(source)) return
      endSink(sink, far)
      // RFC 9113 §8.1: RST_STREAM NO_ERROR after the peer's END_STREAM asks us to stop sending. Node then
      // keeps the stream open until its pending writes finish, which they never will: close it here.
      if ((source as { closed?: boolean }).closed === true && !source.destroyed) source.destroy()
    })
  }

  #noteError (side: 'downstream' | 'upstream', err: Error & { code?: string }): void {
    this.#reason ??= side
    this.#error ??= err
    if (err.code === 'ECONNRESET' || err.code === 'ERR_HTTP2_STREAM_ERROR') this.#reset ??= side
  }

  #sideClosed (side: 'downstream' | 'upstream', other: Duplex): void {
    this.#reason ??= side
    const closing = side === 'downstream' ? this.downstream : this.upstream
    if (wasReset(closing)) {
      // Node closes an HTTP/2 stream reset with CANCEL (or lost with its connection) without an 'error'.
      this.#reset ??= side
      this.#error ??= Object.assign(new Error(`HTTP/2 stream reset (code ${(closing as { rstCode?: number }).rstCode})`), {
        code: 'ERR_HTTP2_STREAM_ERROR', rstCode: (closing as { rstCode?: number }).rstCode
      })
    }
    this.#open--
    if (this.#open === 0) {
      this.#finish()
      return
    }
    if (other.destroyed) return
    // This side ended cleanly, but its last bytes and its end may still be inside a filter chain on their
    // way to the other side: the half-close path ends the other side once they are out, and it goes then.
    const sink = side === 'downstream' ? this.#toUpstream : this.#toDownstream
    if (sink?.buffered === true && closing.readableEnded && this.#reset !== side && !other.writableEnded) {
      other.once('finish', () => other.destroy())
      return
    }
    // A reset is carried as a reset when nothing is left to deliver (Envoy's TCP proxy resets too).
    if (this.#reset === side && other.writableLength === 0) {
      resetStream(other)
      return
    }
    // Deliver what is pending to the other side, then let it go (Envoy closes with FlushWrite).
    if (other.writableFinished || other.writableLength === 0) {
      other.destroy()
    } else {
      other.once('finish', () => other.destroy())
      other.end()
    }
  }

  /**
   * Hands both sides over (a WebSocket going away at shutdown): the tunnel stops relaying and listening,
   * reading pauses, and `onClose` will not be called.
   */
  detach (): void {
    this.closed = true
    const { downstream, upstream } = this
    ;(downstream as Timed).setTimeout?.(0)
    downstream.pause()
    upstream.pause()
    downstream.removeListener('data', Tunnel.#onDownstreamData)
    upstream.removeListener('data', Tunnel.#onUpstreamData)
    upstream.removeListener('drain', Tunnel.#onUpstreamDrain)
    downstream.removeListener('drain', Tunnel.#onDownstreamDrain)
    downstream.removeListener('end', Tunnel.#onDownstreamEnd)
    upstream.removeListener('end', Tunnel.#onUpstreamEnd)
    downstream.removeListener('error', Tunnel.#onDownstreamError)
    upstream.removeListener('error', Tunnel.#onUpstreamError)
    downstream.removeListener('close', Tunnel.#onDownstreamClose)
    upstream.removeListener('close', Tunnel.#onUpstreamClose)
    ;(downstream as Side)[kTunnel] = undefined
    ;(upstream as Side)[kTunnel] = undefined
  }

  /** Closes both sides at once (idle timeout, shutdown, filter abort). */
  destroy (error?: Error, reason: TunnelCloseReason = 'destroyed'): void {
    this.#reason ??= reason
    this.#error ??= error
    this.downstream.destroy()
    this.upstream.destroy()
  }

  #finish (): void {
    if (this.closed) return
    this.closed = true
    ;(this.downstream as Timed).setTimeout?.(0)
    this.#onClose?.(this.#reason ?? 'destroyed', this.#error)
  }
}
