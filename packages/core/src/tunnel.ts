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

export interface TunnelOptions {
  /** Close both sides after this many ms without a byte either way (Envoy `idle_timeout`). */
  idleTimeout?: number
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
export class Tunnel {
  readonly downstream: Duplex
  readonly upstream: Duplex
  bytesFromDownstream = 0
  bytesFromUpstream = 0
  closed = false
  #toUpstream: TunnelSink
  #toDownstream: TunnelSink
  #onClose: TunnelOptions['onClose']
  #reason: TunnelCloseReason | undefined
  #error: Error | undefined
  #holds = 0
  #open = 2

  constructor (downstream: Duplex, upstream: Duplex, opts: TunnelOptions = {}) {
    this.downstream = downstream
    this.upstream = upstream
    this.#toUpstream = opts.toUpstream ?? streamSink(upstream)
    this.#toDownstream = opts.toDownstream ?? streamSink(downstream)
    this.#onClose = opts.onClose

    downstream.on('data', (chunk: Buffer) => {
      this.bytesFromDownstream += chunk.length
      if (!this.#toUpstream.write(chunk)) downstream.pause()
    })
    upstream.on('data', (chunk: Buffer) => {
      this.bytesFromUpstream += chunk.length
      if (!this.#toDownstream.write(chunk)) upstream.pause()
    })
    // The far side drained: read again (unless a filter holds the stream).
    upstream.on('drain', () => this.#resume(downstream))
    downstream.on('drain', () => this.#resume(upstream))

    // Half-close carried (RFC 9293 FIN, RFC 9113 END_STREAM): end only the other side's writable half.
    downstream.on('end', () => this.#halfClosed(downstream, this.#toUpstream))
    upstream.on('end', () => this.#halfClosed(upstream, this.#toDownstream))

    downstream.on('error', (err) => this.#noteError('downstream', err))
    upstream.on('error', (err) => this.#noteError('upstream', err))
    downstream.on('close', () => this.#sideClosed('downstream', upstream))
    upstream.on('close', () => this.#sideClosed('upstream', downstream))

    if (opts.idleTimeout !== undefined && opts.idleTimeout > 0) {
      // Every byte either way crosses the downstream, so its inactivity is the tunnel's.
      (downstream as Timed).setTimeout?.(opts.idleTimeout, () => this.destroy(undefined, 'idle_timeout'))
    }
    if (downstream.isPaused()) downstream.resume()
    if (upstream.isPaused()) upstream.resume()
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

  #halfClosed (source: Duplex, sink: TunnelSink): void {
    if (!isHttp2Stream(source)) { sink.end(); return }
    // Node ends an HTTP/2 stream's readable side before it reports a peer's RST_STREAM: wait a turn,
    // so a reset is carried as a reset rather than as a half-close.
    setImmediate(() => {
      if (wasReset(source)) return
      sink.end()
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
    if (sink.buffered === true && closing.readableEnded && this.#reset !== side && !other.writableEnded) {
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
