import { FilterStatus, type Filter, type FilterContext, type FilterResult } from '@switchyard/core'
import { SwyFilterOptionsError } from './errors.js'
import { CloseCode, FrameReader } from './websocket-frame-reader.js'
import { BoundedInflater, type InflateOp } from './websocket-inflater.js'
import { closeFrame } from './websocket-close-frame.js'

export interface WebSocketFrameLimitOptions {
  /** Largest message payload as sent (compressed size under permessage-deflate); larger → close 1009. */
  maxMessageBytes?: number
  /** Messages the downstream may start per second on one connection; more → close 1008. */
  maxMessagesPerSecond?: number
  /** Inflate permessage-deflate messages to bound their real size by `maxInflatedBytes`. */
  inflate?: boolean
  /** With `inflate`: largest inflated message (default `maxMessageBytes`); larger → close 1009. */
  maxInflatedBytes?: number
  /** ms both peers get to close after the filter sent its close frames, before the stream is aborted (default 5000). */
  closeTimeout?: number
}

/** Messages counted on one connection, kept in `ctx.state[websocketMessagesKey]`. */
export interface WebSocketMessageCounts {
  fromDownstream: number
  fromUpstream: number
}

/** The `ctx.state` key of a stream's `WebSocketMessageCounts` (read by the access log). */
export const websocketMessagesKey = 'websocket.messages'

type Direction = 'request' | 'response'
const EMPTY = Buffer.alloc(0)

/** The status of a violation found before the `101`: the client has no WebSocket to close yet. */
function httpStatusOf (code: number): number {
  return code === CloseCode.MessageTooBig ? 413 : code === CloseCode.PolicyViolation ? 429 : 400
}

/** The per-connection reader pair, in `ctx.state` under the filter's own symbol. */
class FrameLimitStream {
  open = false
  done = false
  closing = false
  readonly counts: WebSocketMessageCounts = { fromDownstream: 0, fromUpstream: 0 }
  readonly request: FrameReader
  readonly response: FrameReader
  inflaters: Record<Direction, BoundedInflater> | undefined
  readonly ops: Record<Direction, InflateOp[]> = { request: [], response: [] }
  timer: NodeJS.Timeout | undefined
  #windowStart = 0
  #windowCount = 0

  constructor (readonly opts: Required<Pick<WebSocketFrameLimitOptions, 'closeTimeout'>> & WebSocketFrameLimitOptions) {
    const rate = opts.maxMessagesPerSecond
    this.request = new FrameReader({
      fromClient: true,
      maxMessageBytes: opts.maxMessageBytes,
      onMessageStart: rate === undefined ? undefined : () => this.#rate(rate),
      onMessageEnd: (compressed) => { this.counts.fromDownstream++; if (compressed) this.#opEnd('request') },
      onCompressedPayload: (c, s, e, m, i) => this.#op('request', c, s, e, m, i)
    })
    this.response = new FrameReader({
      fromClient: false,
      maxMessageBytes: opts.maxMessageBytes,
      onMessageEnd: (compressed) => { this.counts.fromUpstream++; if (compressed) this.#opEnd('response') },
      onCompressedPayload: (c, s, e, m, i) => this.#op('response', c, s, e, m, i)
    })
  }

  // A fixed one-second window per connection.
  #rate (max: number): number {
    const now = Date.now()
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now
      this.#windowCount = 0
    }
    return ++this.#windowCount > max ? CloseCode.PolicyViolation : 0
  }

  #op (dir: Direction, chunk: Buffer, start: number, end: number, mask: Buffer | null, index: number): void {
    if (this.inflaters === undefined) return
    // Inflating needs the payload unmasked (RFC 6455 §5.3): a copy, only when `inflate` is on.
    const out = Buffer.allocUnsafe(end - start)
    if (mask === null) chunk.copy(out, 0, start, end)
    else for (let i = 0; i < out.length; i++) out[i] = chunk[start + i]! ^ mask[(index + i) & 3]!
    this.ops[dir].push(out)
  }

  #opEnd (dir: Direction): void {
    if (this.inflaters !== undefined) this.ops[dir].push(null)
  }

  data (ctx: FilterContext, dir: Direction, chunk: Buffer, end: boolean): FilterResult {
    if (this.closing) return FilterStatus.StopIteration // nothing passes after our close frames
    if (this.done || (dir === 'response' && !this.open)) return FilterStatus.Continue
    const reader = this[dir]
    const heldBefore = reader.headerFilled
    const held = heldBefore > 0 ? Buffer.from(reader.header.subarray(0, heldBefore)) : undefined
    const betweenBefore = reader.betweenFrames
    const code = reader.read(chunk)
    if (code !== 0) {
      this.ops[dir] = []
      const cut = reader.errorFrameStart
      // The frames before the one at fault still go through, so the close frame follows a whole frame. No
      // byte of the frame at fault has gone on: its header is read whole (held back while partial) first.
      const forward = cut < 0 ? EMPTY : held === undefined ? chunk.subarray(0, cut) : Buffer.concat([held, chunk.subarray(0, cut)])
      return this.fail(ctx, dir, code, forward)
    }
    // A partial frame header at the end of a chunk is held back until it is complete, so the forwarded
    // bytes always end between frames or inside a payload, never inside a header (a close frame can then
    // follow the last whole frame). Rare: TCP seldom splits 2 to 14 bytes; the common path returns the chunk.
    const tail = end ? 0 : reader.headerFilled
    if (held !== undefined || tail > 0) {
      if (held !== undefined && tail === heldBefore + chunk.length) return FilterStatus.StopIteration
      const body = tail === 0 ? chunk : chunk.subarray(0, chunk.length - tail)
      const out = held === undefined ? body : Buffer.concat([held, body])
      if (out.length === 0) return FilterStatus.StopIteration
      ctx.replaceData(out)
    }
    const ops = this.ops[dir]
    if (ops.length === 0) return FilterStatus.Continue
    this.ops[dir] = []
    // The chunk waits (the chain parks it) until its compressed bytes are inflated and measured.
    return this.inflaters![dir].run(ops).then((failed) => {
      if (failed === 0 || this.closing) return this.closing ? FilterStatus.StopIteration : FilterStatus.Continue
      return this.fail(ctx, dir, failed, betweenBefore ? EMPTY : undefined)
    })
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7): a close frame with `code` to both peers, then each side's
   * write half is ended. `forward` is what of the current chunk still goes on; undefined when part of
   * the frame at fault already went through (then that peer's side is ended without a close frame).
   */
  fail (ctx: FilterContext, dir: Direction, code: number, forward: Buffer | undefined): typeof FilterStatus.StopIteration {
    this.closing = true
    if (!this.open) {
      ctx.sendLocalReply(httpStatusOf(code))
      return FilterStatus.StopIteration
    }
    ctx.log.debug({ code, direction: dir === 'request' ? 'downstream' : 'upstream' }, 'websocket frame limit: failing the connection')
    const other = dir === 'request' ? this.response : this.request
    const toReceiver = forward === undefined ? EMPTY : closeFrame(code, dir === 'request')
    const toSender = other.betweenFrames ? closeFrame(code, dir !== 'request') : EMPTY
    const receiver = dir === 'request' ? ctx.injectRequestData : ctx.injectResponseData
    const sender = dir === 'request' ? ctx.injectResponseData : ctx.injectRequestData
    if (forward !== undefined && forward.length > 0) receiver.call(ctx, forward)
    receiver.call(ctx, toReceiver, true)
    sender.call(ctx, toSender, true)
    this.timer = setTimeout(() => ctx.abort(new Error(`websocket close handshake not finished after ${this.opts.closeTimeout}ms`)), this.opts.closeTimeout)
    this.timer.unref()
    return FilterStatus.StopIteration
  }

  dispose (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.inflaters?.request.close()
    this.inflaters?.response.close()
  }
}

function checkPositive (value: number | undefined, field: string): void {
  if (value !== undefined && (typeof value !== 'number' || !(value > 0))) {
    throw new SwyFilterOptionsError(field, 'websocket-frame-limit', 'must be a positive number')
  }
}

/**
 * Reads the RFC 6455 frames of WebSocket tunnels (`ctx.upgradeType === 'websocket'`) in both
 * directions, forwarding them unchanged, and fails the connection on: a message over
 * `maxMessageBytes` (1009), more than `maxMessagesPerSecond` messages from the downstream (1008), an
 * inflated message over `maxInflatedBytes` with `inflate` (1009), a framing error (1002). Before the
 * `101` there is no WebSocket yet: a violation in early bytes is answered 413 / 429 / 400 instead.
 * Other streams pass untouched.
 */
export function createWebSocketFrameLimitFilter (options: WebSocketFrameLimitOptions = {}): Filter {
  checkPositive(options.maxMessageBytes, 'maxMessageBytes')
  checkPositive(options.maxMessagesPerSecond, 'maxMessagesPerSecond')
  checkPositive(options.maxInflatedBytes, 'maxInflatedBytes')
  checkPositive(options.closeTimeout, 'closeTimeout')
  const opts = { ...options, closeTimeout: options.closeTimeout ?? 5000 }
  const inflateLimit = options.maxInflatedBytes ?? options.maxMessageBytes ?? Infinity
  const kStream = Symbol('switchyard.websocketFrameLimit')
  const streamOf = (ctx: FilterContext): FrameLimitStream | undefined => ctx.state[kStream] as FrameLimitStream | undefined

  return {
    name: 'websocket-frame-limit',
    onRequestHeaders (ctx) {
      if (ctx.upgradeType !== 'websocket') return
      const stream = new FrameLimitStream(opts)
      ctx.state[kStream] = stream
      ctx.state[websocketMessagesKey] = stream.counts
    },
    onResponseHeaders (ctx, status, headers) {
      const stream = streamOf(ctx)
      if (stream === undefined) return
      if (status !== 101) { stream.done = true; return }
      stream.open = true
      // RFC 7692 §5: the 101's Sec-WebSocket-Extensions says whether permessage-deflate is in use.
      const ext = headers['sec-websocket-extensions']
      if (ext !== undefined && /(^|,)\s*permessage-deflate\b/i.test(Array.isArray(ext) ? ext.join(',') : ext)) {
        stream.request.deflate = true
        stream.response.deflate = true
        if (options.inflate === true) {
          stream.inflaters = { request: new BoundedInflater(inflateLimit), response: new BoundedInflater(inflateLimit) }
        }
      }
    },
    onRequestData (ctx, chunk, endStream) {
      const stream = streamOf(ctx)
      return stream === undefined ? FilterStatus.Continue : stream.data(ctx, 'request', chunk, endStream)
    },
    onResponseData (ctx, chunk, endStream) {
      const stream = streamOf(ctx)
      return stream === undefined ? FilterStatus.Continue : stream.data(ctx, 'response', chunk, endStream)
    },
    onClose (ctx) {
      streamOf(ctx)?.dispose()
    }
  }
}
