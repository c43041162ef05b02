import { endianness } from 'node:os'

const LITTLE_ENDIAN = endianness() === 'LE'

/**
 * The echo upstream's WebSocket side: an incremental RFC 6455 frame reader that turns every client
 * frame into the server frame with the same first byte (FIN, RSV, opcode) and the same payload,
 * unmasked (§5.1: a server never masks). Frames may split anywhere across chunks.
 *
 * It works in place: a client header is 4 bytes longer than the server's (the masking key), so the
 * server header is written over the tail of the client header, the payload is unmasked where it
 * lies, and a chunk of whole frames becomes one subarray of itself to write — no copy, no
 * allocation. Only a header split across chunks, with too few of its bytes in the later chunk to
 * hold the server header, costs a small separate buffer.
 */
export class FrameEcho {
  readonly #write: (prefix: Buffer | null, body: Buffer | null) => void
  /** The current header, while it is split across chunks. */
  readonly #header = Buffer.alloc(14)
  #have = 0
  /** Payload bytes still to come in the current frame; -1 while reading a header. */
  #left = -1
  readonly #mask = Buffer.alloc(4)
  #masked = false
  #maskPos = 0

  /** `write(prefix, body)`: the server bytes for one chunk, `prefix` (a split header's answer) first. */
  constructor (write: (prefix: Buffer | null, body: Buffer | null) => void) {
    this.#write = write
  }

  push (chunk: Buffer): void {
    const n = chunk.length
    let i = 0
    let prefix: Buffer | null = null
    // The output region chunk[start, end): always at or behind i, so compacting never overwrites unread bytes.
    let start = -1
    let end = -1
    const emit = (a: number, b: number): void => {
      if (a === b) return
      if (start < 0) {
        start = a
        end = b
      } else {
        if (a !== end) chunk.copyWithin(end, a, b)
        end += b - a
      }
    }
    while (i < n) {
      if (this.#left < 0) {
        // Header. Fast path: all of it in this chunk.
        if (this.#have === 0 && n - i >= 2 && n - i >= headerLength(chunk[i + 1])) {
          const length = headerLength(chunk[i + 1])
          const server = this.#startFrame(chunk, i, length)
          writeServerHeader(chunk, i + length - server, chunk[i], this.#left)
          emit(i + length - server, i + length)
          i += length
        } else {
          const from = i
          if (this.#have < 2) {
            const take = Math.min(2 - this.#have, n - i)
            chunk.copy(this.#header, this.#have, i, i + take)
            this.#have += take
            i += take
            if (this.#have < 2) break
          }
          const length = headerLength(this.#header[1])
          const take = Math.min(length - this.#have, n - i)
          chunk.copy(this.#header, this.#have, i, i + take)
          this.#have += take
          i += take
          if (this.#have < length) break
          this.#have = 0
          const server = this.#startFrame(this.#header, 0, length)
          if (i - from >= server) {
            writeServerHeader(chunk, i - server, this.#header[0], this.#left)
            emit(i - server, i)
          } else {
            // Only at the start of a chunk (a header completes in the chunk after the one it began in).
            prefix = Buffer.alloc(server)
            writeServerHeader(prefix, 0, this.#header[0], this.#left)
          }
        }
        if (this.#left === 0) this.#left = -1
        continue
      }
      // Payload.
      const take = Math.min(this.#left, n - i)
      if (this.#masked) this.#maskPos = unmask(chunk, i, i + take, this.#mask, this.#maskPos)
      emit(i, i + take)
      i += take
      this.#left -= take
      if (this.#left === 0) this.#left = -1
    }
    if (prefix !== null || start >= 0) this.#write(prefix, start >= 0 ? chunk.subarray(start, end) : null)
  }

  /** Reads a complete client header at `buf[at, at + length)`; returns the server header's length. */
  #startFrame (buf: Buffer, at: number, length: number): number {
    const code = buf[at + 1] & 0x7f
    const payload = code < 126 ? code : code === 126 ? buf.readUInt16BE(at + 2) : buf.readUInt32BE(at + 2) * 2 ** 32 + buf.readUInt32BE(at + 6)
    this.#masked = (buf[at + 1] & 0x80) !== 0
    if (this.#masked) buf.copy(this.#mask, 0, at + length - 4, at + length)
    this.#maskPos = 0
    this.#left = payload
    return length - (this.#masked ? 4 : 0)
  }
}

/** A header's length from its second byte: 2, plus 2 or 8 length bytes, plus 4 when masked. */
function headerLength (second: number): number {
  const code = second & 0x7f
  return 2 + (code < 126 ? 0 : code === 126 ? 2 : 8) + ((second & 0x80) !== 0 ? 4 : 0)
}

/** Writes an unmasked header for `payload` bytes at `buf[at]` (its length matches `headerLength` of it). */
function writeServerHeader (buf: Buffer, at: number, first: number, payload: number): void {
  buf[at] = first
  if (payload < 126) {
    buf[at + 1] = payload
  } else if (payload < 65536) {
    buf[at + 1] = 126
    buf.writeUInt16BE(payload, at + 2)
  } else {
    buf[at + 1] = 127
    buf.writeUInt32BE(Math.floor(payload / 2 ** 32), at + 2)
    buf.writeUInt32BE(payload >>> 0, at + 6)
  }
}

/** XORs `buf[from, to)` with the key from key position `pos`, 4 bytes at a time where aligned; returns the next position. */
function unmask (buf: Buffer, from: number, to: number, mask: Buffer, pos: number): number {
  let i = from
  while (i < to && (!LITTLE_ENDIAN || ((buf.byteOffset + i) & 3) !== 0)) buf[i++] ^= mask[pos++ & 3]
  const words = (to - i) >>> 2
  if (words > 0) {
    const p = pos & 3
    const key = mask[p] | (mask[(p + 1) & 3] << 8) | (mask[(p + 2) & 3] << 16) | (mask[(p + 3) & 3] << 24)
    const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words)
    for (let k = 0; k < words; k++) view[k] ^= key
    i += words * 4
  }
  while (i < to) buf[i++] ^= mask[pos++ & 3]
  return pos & 3
}
