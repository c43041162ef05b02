import { deflateRawSync } from 'node:zlib'

export interface FrameSpec {
  opcode: number
  payload?: Buffer | string
  fin?: boolean
  rsv1?: boolean
  rsv2?: boolean
  /** Masked as a client frame (default true). */
  mask?: boolean
  /** Force a 16- or 64-bit length encoding even for small payloads. */
  lengthBits?: 7 | 16 | 64
  /** Override the 64-bit length's high word (protocol-error tests). */
  highWord?: number
}

/** Builds one RFC 6455 frame. */
export function frame (spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : spec.payload ?? Buffer.alloc(0)
  const mask = spec.mask ?? true
  const len = payload.length
  const bits = spec.lengthBits ?? (len < 126 ? 7 : len < 65536 ? 16 : 64)
  const ext = bits === 7 ? 0 : bits === 16 ? 2 : 8
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0))
  head[0] = ((spec.fin ?? true) ? 0x80 : 0) | (spec.rsv1 === true ? 0x40 : 0) | (spec.rsv2 === true ? 0x20 : 0) | spec.opcode
  head[1] = (mask ? 0x80 : 0) | (bits === 7 ? len : bits === 16 ? 126 : 127)
  if (bits === 16) head.writeUInt16BE(len, 2)
  if (bits === 64) { head.writeUInt32BE(spec.highWord ?? 0, 2); head.writeUInt32BE(len, 6) }
  if (!mask) return Buffer.concat([head, payload])
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78])
  key.copy(head, 2 + ext)
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ key[i & 3]!
  return Buffer.concat([head, body])
}

/** A permessage-deflate payload (RFC 7692 §7.2.1: the trailing 00 00 ff ff removed). */
export function deflated (text: string): Buffer {
  const out = deflateRawSync(Buffer.from(text), { finishFlush: 2 /* Z_SYNC_FLUSH */ })
  return out.subarray(0, out.length - 4)
}

/** Parses close frames out of bytes that hold just one: the code. */
export function closeCodeOf (bytes: Buffer): number {
  const masked = (bytes[1]! & 0x80) !== 0
  assertClose(bytes)
  if (!masked) return bytes.readUInt16BE(2)
  return ((bytes[6]! ^ bytes[2]!) << 8) | (bytes[7]! ^ bytes[3]!)
}

function assertClose (bytes: Buffer): void {
  if (bytes[0] !== 0x88) throw new Error(`not a close frame: ${bytes.subarray(0, 2).toString('hex')}`)
}
