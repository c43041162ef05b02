import { constants, createInflateRaw, type InflateRaw } from 'node:zlib'
import { CloseCode } from './websocket-frame-reader.js'

/** One step for the inflater: compressed payload bytes, or the end of a message. */
export type InflateOp = Buffer | null

// RFC 7692 §7.2.2: the sender removed this empty stored block's tail; the receiver appends it back.
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])

/**
 * Inflates the permessage-deflate messages of one direction only to measure them: the output is counted
 * and dropped. One raw inflater per direction keeps the sliding window across messages (context
 * takeover, RFC 7692 §7.1.1), which also decodes correctly when the peer resets it per message.
 */
export class BoundedInflater {
  readonly #limit: number
  readonly #zlib: InflateRaw
  #count = 0
  #failed = 0

  constructor (limit: number) {
    this.#limit = limit
    this.#zlib = createInflateRaw({ windowBits: 15 })
    this.#zlib.on('data', (out: Buffer) => {
      this.#count += out.length
      if (this.#count > this.#limit && this.#failed === 0) this.#failed = CloseCode.MessageTooBig
    })
    // RFC 7692 §8.2.3.1 … a receiver fails the connection on data that does not inflate.
    this.#zlib.on('error', () => { if (this.#failed === 0) this.#failed = CloseCode.InvalidPayload })
  }

  /** Inflates `ops` in order; answers 0, or 1009 when a message inflates past the limit (1007 if corrupt). */
  async run (ops: InflateOp[]): Promise<number> {
    for (const op of ops) {
      if (this.#failed !== 0) return this.#failed
      if (op !== null) {
        this.#zlib.write(op)
        continue
      }
      this.#zlib.write(TRAILER)
      await this.#flush()
      if (this.#failed !== 0) return this.#failed
      this.#count = 0
    }
    if (this.#failed === 0) await this.#flush()
    return this.#failed
  }

  #flush (): Promise<void> {
    return new Promise((resolve) => {
      if (this.#zlib.destroyed) { resolve(); return }
      const done = (): void => { this.#zlib.off('error', done); resolve() }
      this.#zlib.once('error', done)
      this.#zlib.flush(constants.Z_SYNC_FLUSH, done)
    })
  }

  close (): void {
    this.#zlib.destroy()
  }
}
