import { createHash } from 'node:crypto'

/** The upgrade types the harness can speak; every mode sees the same bytes. */
export type UpgradeType = 'websocket' | 'bench'

/** One fixed client key (RFC 6455 §4.1 example): every handshake is byte-identical, so none costs the client a hash. */
export const WEBSOCKET_KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** The path every proxy routes to the echo upstream; the query picks what the upstream does. */
export const ECHO_PATH = '/echo'

/** The HTTP/1.1 upgrade request the load client writes (precomputed once per target). */
export function upgradeRequest (type: UpgradeType, port: number, query = 'm=echo'): Buffer {
  const lines = [
    `GET ${ECHO_PATH}?${query} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Connection: Upgrade',
    `Upgrade: ${type}`
  ]
  if (type === 'websocket') lines.push('Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${WEBSOCKET_KEY}`)
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1')
}

/** Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2). */
export function websocketAccept (key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64')
}

/** The upstream's 101 for an upgrade of `type` (`websocketKey` given for WebSocket). */
export function switchingProtocols (type: string, websocketKey: string | undefined): Buffer {
  const lines = ['HTTP/1.1 101 Switching Protocols', `Upgrade: ${type}`, 'Connection: Upgrade']
  if (websocketKey !== undefined) lines.push(`Sec-WebSocket-Accept: ${websocketAccept(websocketKey)}`)
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1')
}

/** The payload of every message of `payloadBytes` (a fixed pattern, so a wrong echo shows). */
function payloadOf (payloadBytes: number): Buffer {
  const payload = Buffer.alloc(payloadBytes)
  for (let i = 0; i < payloadBytes; i++) payload[i] = (i * 31 + 7) & 0xff
  return payload
}

/**
 * An RFC 6455 §5.2 frame header: `first` (FIN, RSV, opcode), then the 7-bit, 16-bit or 64-bit payload
 * length, then, for a masked (client) frame, the 4-byte masking key.
 */
export function frameHeader (first: number, payloadBytes: number, mask?: Buffer): Buffer {
  const lengthBytes = payloadBytes < 126 ? 0 : payloadBytes < 65536 ? 2 : 8
  const header = Buffer.alloc(2 + lengthBytes + (mask !== undefined ? 4 : 0))
  header[0] = first
  const maskBit = mask !== undefined ? 0x80 : 0
  if (lengthBytes === 0) {
    header[1] = maskBit | payloadBytes
  } else if (lengthBytes === 2) {
    header[1] = maskBit | 126
    header.writeUInt16BE(payloadBytes, 2)
  } else {
    header[1] = maskBit | 127
    header.writeBigUInt64BE(BigInt(payloadBytes), 2)
  }
  mask?.copy(header, 2 + lengthBytes)
  return header
}

/** FIN + binary: the only data frames the harness sends. */
const FIN_BINARY = 0x82
const CLIENT_MASK = Buffer.from([0x12, 0x34, 0x56, 0x78])

/**
 * One client message carrying `payloadBytes` of payload: a masked binary WebSocket frame
 * (RFC 6455 §5.2: 2 + 0/2/8 length bytes + 4 mask bytes + payload, 6 or 14 bytes over the payload),
 * or the raw payload for `Upgrade: bench`.
 */
export function message (type: UpgradeType, payloadBytes: number): Buffer {
  const payload = payloadOf(payloadBytes)
  if (type === 'bench') return payload
  for (let i = 0; i < payloadBytes; i++) payload[i] ^= CLIENT_MASK[i & 3]
  return Buffer.concat([frameHeader(FIN_BINARY, payloadBytes, CLIENT_MASK), payload])
}

/**
 * What the echo upstream answers to `message(type, payloadBytes)`: for WebSocket the same payload in
 * an unmasked binary server frame (2 or 10 bytes over the payload); for `bench` the same bytes.
 */
export function echoReply (type: UpgradeType, payloadBytes: number): Buffer {
  const payload = payloadOf(payloadBytes)
  if (type === 'bench') return payload
  return Buffer.concat([frameHeader(FIN_BINARY, payloadBytes), payload])
}

/** Payload per frame in the stream phase (`m=source`) over WebSocket: 64 KiB, a 10-byte header each. */
export const SOURCE_FRAME_PAYLOAD = 64 * 1024

/** One stream-phase server frame of `payloadBytes` (≤ SOURCE_FRAME_PAYLOAD) of 0x61, unmasked binary. */
export function sourceFrame (payloadBytes: number): Buffer {
  return Buffer.concat([frameHeader(FIN_BINARY, payloadBytes), Buffer.alloc(payloadBytes, 0x61)])
}

/**
 * The bytes on the wire for `m=source&n=N`: N payload bytes, and for WebSocket a frame header per
 * SOURCE_FRAME_PAYLOAD of them (the last frame carries the remainder).
 */
export function sourceWireBytes (type: UpgradeType, payloadBytes: number): number {
  if (type === 'bench') return payloadBytes
  const full = Math.floor(payloadBytes / SOURCE_FRAME_PAYLOAD)
  const last = payloadBytes % SOURCE_FRAME_PAYLOAD
  return full * (SOURCE_FRAME_PAYLOAD + frameHeader(FIN_BINARY, SOURCE_FRAME_PAYLOAD).length) +
    (last > 0 ? last + frameHeader(FIN_BINARY, last).length : 0)
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')

/** Accumulates bytes until a complete HTTP head; returns the head and the bytes after it. */
export class HeadReader {
  #chunks: Buffer[] = []
  #size = 0

  /** Feeds a chunk; returns null until the head is complete. */
  push (chunk: Buffer): { head: string, rest: Buffer } | null {
    this.#chunks.push(chunk)
    this.#size += chunk.length
    const all = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#size)
    const end = all.indexOf(CRLFCRLF)
    if (end === -1) {
      if (this.#size > 16384) throw new Error('HTTP head larger than 16 KiB')
      this.#chunks = [all]
      return null
    }
    return { head: all.toString('latin1', 0, end), rest: all.subarray(end + 4) }
  }
}

/** The status code of a response head (`HTTP/1.1 101 ...`). */
export function statusOf (head: string): number {
  return Number(head.slice(9, 12))
}
