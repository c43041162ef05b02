import { randomFillSync } from 'node:crypto'

/**
 * A close frame carrying `code` (RFC 6455 §5.5.1). Frames toward a server are masked with a fresh
 * key (§5.3); frames toward a client are not.
 */
export function closeFrame (code: number, towardServer: boolean): Buffer {
  if (!towardServer) return Buffer.from([0x88, 0x02, code >> 8, code & 0xff])
  const frame = Buffer.alloc(8)
  frame[0] = 0x88
  frame[1] = 0x82
  randomFillSync(frame, 2, 4)
  frame[6] = (code >> 8) ^ frame[2]!
  frame[7] = (code & 0xff) ^ frame[3]!
  return frame
}
