import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { resetStream } from './tunnel.js'

/** RFC 6455 §7.4.1: 1001, "going away" (a server going down). */
export const GOING_AWAY = 1001
/** How long the peers have to answer the close frames before their connections are reset (ms). */
export const GOING_AWAY_TIMEOUT = 500
const OPCODE_CLOSE = 0x8

/**
 * Where one direction of a WebSocket tunnel stands among its frames (RFC 6455 §5.2), from the bytes
 * written to the wire: a frame may only be injected at a boundary. Header bytes are read; payload bytes
 * are only counted, so watching costs a few operations per frame, nothing per payload byte.
 */
export class FrameBoundary {
  readonly #header = Buffer.alloc(14)
  #have = 0
  #need = 2
  #payload = 0
  /** Set when a close frame's header was read; its payload may still follow. */
  sawClose = false

  /** Takes `chunk` into account. */
  note (chunk: Buffer): void {
    this.advance(chunk, chunk.length)
  }

  /** True between frames. */
  get atBoundary (): boolean {
    return this.#have === 0 && this.#payload === 0
  }

  /**
   * Reads at most `limit` bytes of `chunk`, stopping as soon as a frame ends when `stopAtBoundary` is set.
   * Returns how many bytes were read.
   */
  advance (chunk: Buffer, limit: number, stopAtBoundary = false): number {
    let i = 0
    while (i < limit) {
      if (this.#payload > 0) {
        const take = Math.min(this.#payload, limit - i)
        this.#payload -= take
        i += take
        if (stopAtBoundary && this.#payload === 0) return i
        continue
      }
      this.#header[this.#have++] = chunk[i++]!
      if (this.#have === 2) this.#need = headerLength(this.#header)
      if (this.#have < this.#need) continue
      this.#payload = payloadLength(this.#header)
      if ((this.#header[0]! & 0x0f) === OPCODE_CLOSE) this.sawClose = true
      this.#have = 0
      this.#need = 2
      if (stopAtBoundary && this.#payload === 0) return i
    }
    return i
  }
}

function headerLength (h: Buffer): number {
  const len7 = h[1]! & 0x7f
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((h[1]! & 0x80) !== 0 ? 4 : 0)
}

function payloadLength (h: Buffer): number {
  const len7 = h[1]! & 0x7f
  if (len7 === 126) return h.readUInt16BE(2)
  if (len7 === 127) return Number(h.readBigUInt64BE(2))
  return len7
}

/** A close frame with `code`; masked (RFC 6455 §5.3) when it goes from the client's side to the server. */
export function closeFrame (code: number, masked: boolean): Buffer {
  const payload = Buffer.alloc(2)
  payload.writeUInt16BE(code)
  if (!masked) return Buffer.concat([Buffer.from([0x80 | OPCODE_CLOSE, payload.length]), payload])
  const key = randomBytes(4)
  for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i % 4]!
  return Buffer.concat([Buffer.from([0x80 | OPCODE_CLOSE, 0x80 | payload.length]), key, payload])
}

export interface GoingAwayInit {
  downstream: Duplex
  upstream: Duplex
  /** Frames written so far to the downstream (server to client) and to the upstream (client to server). */
  toDownstream: FrameBoundary
  toUpstream: FrameBoundary
  /** Once both sides are closed (answered, or reset at the bound). */
  onDone: () => void
}

/**
 * The end of a WebSocket tunnel when the server shuts down (where Envoy would just reset it, and a browser
 * would see 1006): each side gets a close frame with 1001, going away, at the first frame boundary of its
 * direction (the rest of a frame in flight is still relayed); then nothing more is relayed. The client's
 * close frame in answer is read and its connection closed (RFC 6455 §7.1.1: the server closes TCP first);
 * the upstream closes its own. A peer that has not answered within `GOING_AWAY_TIMEOUT` is reset.
 */
export class WebSocketGoingAway {
  readonly #init: GoingAwayInit
  #closedDown = false
  #closedUp = false
  /** The client's frames after our close went out (to read its close frame). */
  readonly #fromClient = new FrameBoundary()
  #timer: NodeJS.Timeout | undefined
  #open = 2

  constructor (init: GoingAwayInit) {
    this.#init = init
  }

  start (): void {
    const { downstream, upstream, toDownstream, toUpstream } = this.#init
    for (const side of [downstream, upstream]) {
      side.on('error', noop)
      if (side.destroyed) this.#sideClosed()
      else side.once('close', () => this.#sideClosed())
    }
    downstream.on('data', (chunk: Buffer) => this.#fromDownstream(chunk))
    upstream.on('data', (chunk: Buffer) => this.#fromUpstream(chunk))
    downstream.once('end', () => { if (!downstream.writableEnded) downstream.end() })
    upstream.once('end', () => { if (!upstream.writableEnded) upstream.end() })
    if (toDownstream.atBoundary) this.#closeDownstream()
    if (toUpstream.atBoundary) this.#closeUpstream()
    this.#timer = setTimeout(() => {
      resetStream(downstream)
      resetStream(upstream)
    }, GOING_AWAY_TIMEOUT)
    this.#timer.unref()
    downstream.resume()
    upstream.resume()
  }

  #fromDownstream (chunk: Buffer): void {
    let rest = chunk
    if (!this.#closedUp) {
      // The frame the client was sending goes on to its end, then the upstream gets our close.
      const n = this.#init.toUpstream.advance(chunk, chunk.length, true)
      this.#relay(chunk.subarray(0, n), this.#init.downstream, this.#init.upstream)
      if (!this.#init.toUpstream.atBoundary) return
      this.#closeUpstream()
      rest = chunk.subarray(n)
    }
    if (!this.#closedDown) return
    this.#fromClient.note(rest)
    // The client answered our close: the server side closes the connection.
    if (this.#fromClient.sawClose && this.#fromClient.atBoundary && !this.#init.downstream.writableEnded) this.#init.downstream.end()
  }

  #fromUpstream (chunk: Buffer): void {
    if (this.#closedDown) return // the upstream's answer to our close, or anything after: not relayed
    const n = this.#init.toDownstream.advance(chunk, chunk.length, true)
    this.#relay(chunk.subarray(0, n), this.#init.upstream, this.#init.downstream)
    if (this.#init.toDownstream.atBoundary) this.#closeDownstream()
  }

  /** The rest of a frame in flight, with backpressure (a frame may be large). */
  #relay (bytes: Buffer, source: Duplex, far: Duplex): void {
    if (bytes.length === 0 || far.destroyed || far.writableEnded) return
    if (!far.write(bytes)) {
      source.pause()
      far.once('drain', () => source.resume())
    }
  }

  #closeDownstream (): void {
    this.#closedDown = true
    const down = this.#init.downstream
    if (!down.writableEnded && !down.destroyed) down.write(closeFrame(GOING_AWAY, false))
  }

  #closeUpstream (): void {
    this.#closedUp = true
    const up = this.#init.upstream
    if (!up.writableEnded && !up.destroyed) up.write(closeFrame(GOING_AWAY, true))
  }

  #sideClosed (): void {
    if (--this.#open > 0) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#init.onDone()
  }
}

function noop (): void {}
