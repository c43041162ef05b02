import { createHash, randomBytes } from 'node:crypto'

/** RFC 6455 §1.3: the GUID appended to `Sec-WebSocket-Key` before hashing. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** The `Sec-WebSocket-Accept` an upstream must answer for `key` (RFC 6455 §4.2.2). */
export function acceptFor (key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64')
}

/**
 * Keys this process generated for RFC 8441 clients, which send none (Envoy: downstream HTTP/2 +
 * upstream HTTP/1.1 + no client key → a 24-character key is generated, the 101's accept checked and
 * stripped). The downstream listener adds a key when it shapes the request; the transports look the
 * key up by value, so a key a client sent (or a filter replaced) is never mistaken for ours.
 */
export class GeneratedKeys {
  readonly #keys = new Set<string>()

  /** Random bytes for 256 keys, drawn at once: one `randomBytes` call per 256 upgrades, not one each. */
  #pool = Buffer.alloc(0)
  #offset = 0

  /** A fresh 16-byte nonce, base64: 24 characters. Forget it with `release` when the stream ends. */
  generate (): string {
    if (this.#offset + 16 > this.#pool.length) {
      this.#pool = randomBytes(16 * 256)
      this.#offset = 0
    }
    const key = this.#pool.toString('base64', this.#offset, this.#offset + 16)
    this.#offset += 16
    this.#keys.add(key)
    return key
  }

  has (key: string | string[] | undefined): key is string {
    return typeof key === 'string' && this.#keys.has(key)
  }

  release (key: string): void {
    this.#keys.delete(key)
  }

  get size (): number {
    return this.#keys.size
  }
}
