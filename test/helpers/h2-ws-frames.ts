/**
 * Just enough RFC 6455 framing to talk WebSocket over a bare HTTP/2 stream (an RFC 8441 client has no
 * library here): masked text frames out, unmasked frames in.
 */
import { randomBytes } from 'node:crypto'

/** A masked, final text frame (RFC 6455 §5.2: clients mask). */
export function maskedTextFrame (text: string): Buffer {
  const payload = Buffer.from(text)
  const len = payload.length
  const header = len < 126 ? Buffer.from([0x81, 0x80 | len]) : len < 65536 ? Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff]) : undefined
  if (header === undefined) throw new Error('frame too large for this helper')
  const mask = randomBytes(4)
  const masked = Buffer.alloc(len)
  for (let i = 0; i < len; i++) masked[i] = payload[i]! ^ mask[i % 4]!
  return Buffer.concat([header, mask, masked])
}

/** Yields the text of each unmasked data frame read from `stream`. */
export async function * decodeFrames (stream: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  let buf = Buffer.alloc(0)
  for await (const chunk of stream) {
    buf = Buffer.concat([buf, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)])
    for (;;) {
      if (buf.length < 2) break
      let len = buf[1]! & 0x7f
      let offset = 2
      if (len === 126) {
        if (buf.length < 4) break
        len = buf.readUInt16BE(2)
        offset = 4
      } else if (len === 127) {
        if (buf.length < 10) break
        len = Number(buf.readBigUInt64BE(2))
        offset = 10
      }
      if (buf.length < offset + len) break
      const payload = buf.subarray(offset, offset + len)
      buf = buf.subarray(offset + len)
      yield payload.toString()
    }
  }
}
