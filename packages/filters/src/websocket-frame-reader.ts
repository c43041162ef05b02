/** WebSocket close codes this package sends (RFC 6455 §7.4.1). */
export const CloseCode = {
  ProtocolError: 1002,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009
} as const
export type CloseCode = typeof CloseCode[keyof typeof CloseCode]

export interface FrameReaderOptions {
  /** Frames from a client must be masked, frames from a server must not be (RFC 6455 §5.1). */
  fromClient: boolean
  /** Largest message payload as sent (the sum of its frames' lengths); larger → 1009. */
  maxMessageBytes?: number
  /** The first frame of a data message was read: return a close code to refuse the message, or 0. */
  onMessageStart? (): number
  /** The last frame of a data message was read. */
  onMessageEnd? (compressed: boolean): void
  /**
   * Payload bytes of a compressed (RSV1) data frame: `chunk[start, end)`, masked with `mask` (null for
   * server frames) starting at mask index `maskIndex`. The view is only valid during the call.
   */
  onCompressedPayload? (chunk: Buffer, start: number, end: number, mask: Buffer | null, maskIndex: number): void
}

const TWO_32 = 2 ** 32

/**
 * An incremental RFC 6455 §5.2 frame reader: it looks at frame headers only and skips payloads, so the
 * bytes it reads can be forwarded unchanged. Any chunking is accepted: a header (and its 16- or 64-bit
 * length) may be split across chunks. `read` answers 0, or the close code the stream must be failed with.
 */
export class FrameReader {
  /** permessage-deflate is in use: RSV1 is allowed on the first frame of a data message (RFC 7692 §6). */
  deflate = false
  /** Bytes of a frame header not yet complete at the end of the last chunk, kept in `header`. */
  headerFilled = 0
  /** The header bytes read so far (a header is at most 14 bytes). */
  readonly header = Buffer.alloc(14)
  /** After a non-zero `read`: where the frame at fault starts in that chunk, or -1 if in an earlier chunk. */
  errorFrameStart = -1
  /** The close code the stream failed with, or 0. */
  error = 0
  readonly #opts: FrameReaderOptions
  readonly #max: number
  #headerNeeded = 2
  #headerStart = -1
  #remaining = 0
  #payloadIndex = 0
  #opcode = 0
  #fin = true
  #maskAt = -1
  #inMessage = false
  #compressed = false
  #messageBytes = 0

  constructor (opts: FrameReaderOptions) {
    this.#opts = opts
    this.#max = opts.maxMessageBytes ?? Infinity
  }

  /** True between frames: what has been read so far ends exactly at a frame boundary. */
  get atBoundary (): boolean {
    return this.#remaining === 0 && this.headerFilled === 0
  }

  /** True between frames, ignoring a partial header (which the caller may hold back). */
  get betweenFrames (): boolean {
    return this.#remaining === 0
  }

  read (chunk: Buffer): number {
    if (this.error !== 0) return this.error
    const len = chunk.length
    let pos = 0
    this.#headerStart = -1
    while (pos < len) {
      if (this.#remaining > 0) {
        const take = this.#remaining < len - pos ? this.#remaining : len - pos
        if (this.#compressed && this.#opcode < 8 && this.#opts.onCompressedPayload !== undefined) {
          this.#opts.onCompressedPayload(chunk, pos, pos + take, this.#maskAt < 0 ? null : this.header.subarray(this.#maskAt, this.#maskAt + 4), this.#payloadIndex & 3)
        }
        this.#payloadIndex += take
        this.#remaining -= take
        pos += take
        if (this.#remaining === 0) this.#frameEnd()
        continue
      }
      if (this.headerFilled === 0) this.#headerStart = pos
      while (pos < len && this.headerFilled < this.#headerNeeded) {
        const byte = chunk[pos++]!
        this.header[this.headerFilled++] = byte
        if (this.headerFilled === 2) {
          // §5.2: 7-bit length, or 126 → 16-bit, 127 → 64-bit extended length; then a 4-byte mask key.
          const len7 = byte & 0x7f
          this.#headerNeeded = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((byte & 0x80) !== 0 ? 4 : 0)
        }
      }
      if (this.headerFilled < this.#headerNeeded) break
      const code = this.#frameStart()
      if (code !== 0) {
        this.error = code
        this.errorFrameStart = this.#headerStart
        return code
      }
      if (this.#remaining === 0) this.#frameEnd()
    }
    return 0
  }

  #frameStart (): number {
    const h = this.header
    const b0 = h[0]!
    const b1 = h[1]!
    const fin = (b0 & 0x80) !== 0
    const rsv1 = (b0 & 0x40) !== 0
    const opcode = b0 & 0x0f
    const masked = (b1 & 0x80) !== 0
    const len7 = b1 & 0x7f
    this.headerFilled = 0
    const needed = this.#headerNeeded
    this.#headerNeeded = 2
    // §5.2: RSV2/RSV3 must be 0 without an extension defining them.
    if ((b0 & 0x30) !== 0) return CloseCode.ProtocolError
    // §5.1: a server closes on an unmasked client frame; a client on a masked server frame.
    if (masked !== this.#opts.fromClient) return CloseCode.ProtocolError
    let length = len7
    if (len7 === 126) {
      length = h.readUInt16BE(2)
    } else if (len7 === 127) {
      const hi = h.readUInt32BE(2)
      // §5.2: the most significant bit of a 64-bit length must be 0.
      if (hi >= 0x80000000) return CloseCode.ProtocolError
      if (hi > 0x1fffff) return CloseCode.MessageTooBig // beyond 2^53: larger than any limit
      length = hi * TWO_32 + h.readUInt32BE(6)
    }
    this.#maskAt = masked ? needed - 4 : -1
    if (opcode >= 8) {
      // §5.5: control frames are not fragmented and carry at most 125 bytes; they may sit between fragments.
      if (opcode > 10 || !fin || len7 > 125 || rsv1) return CloseCode.ProtocolError
      // §5.5.1: a close body is empty or starts with a 2-byte code.
      if (opcode === 8 && length === 1) return CloseCode.ProtocolError
    } else if (opcode === 0) {
      // §5.4: a continuation needs an open fragmented message; RFC 7692 §6: RSV1 only on the first frame.
      if (!this.#inMessage || rsv1) return CloseCode.ProtocolError
      this.#messageBytes += length
      if (this.#messageBytes > this.#max) return CloseCode.MessageTooBig
    } else if (opcode === 1 || opcode === 2) {
      // §5.4: a new data message may not start inside a fragmented one.
      if (this.#inMessage || (rsv1 && !this.deflate)) return CloseCode.ProtocolError
      this.#inMessage = true
      this.#compressed = rsv1
      this.#messageBytes = length
      if (length > this.#max) return CloseCode.MessageTooBig
      const refused = this.#opts.onMessageStart?.() ?? 0
      if (refused !== 0) return refused
    } else {
      return CloseCode.ProtocolError // §5.2: reserved opcodes 3-7 and 11-15
    }
    this.#opcode = opcode
    this.#fin = fin
    this.#remaining = length
    this.#payloadIndex = 0
    return 0
  }

  #frameEnd (): void {
    if (this.#opcode < 8 && this.#fin) {
      this.#inMessage = false
      this.#opts.onMessageEnd?.(this.#compressed)
    }
  }
}
