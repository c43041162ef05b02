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

/**
 * One client message carrying `payloadBytes` of payload: a masked binary WebSocket frame
 * (RFC 6455 §5.2: 2 + 0/2/8 length bytes + 4 mask bytes + payload), or the raw payload for
 * `Upgrade: bench`. The echo upstream returns these bytes verbatim and nothing on the path
 * parses frames, so the client only counts bytes.
 */
export function message (type: UpgradeType, payloadBytes: number): Buffer {
  const payload = Buffer.alloc(payloadBytes)
  for (let i = 0; i < payloadBytes; i++) payload[i] = (i * 31 + 7) & 0xff
  if (type === 'bench') return payload
  let header: Buffer
  if (payloadBytes < 126) {
    header = Buffer.from([0x82, 0x80 | payloadBytes])
  } else if (payloadBytes < 65536) {
    header = Buffer.from([0x82, 0x80 | 126, payloadBytes >> 8, payloadBytes & 0xff])
  } else {
    header = Buffer.alloc(10)
    header[0] = 0x82
    header[1] = 0x80 | 127
    header.writeBigUInt64BE(BigInt(payloadBytes), 2)
  }
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78])
  for (let i = 0; i < payloadBytes; i++) payload[i] ^= mask[i & 3]
  return Buffer.concat([header, mask, payload])
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
