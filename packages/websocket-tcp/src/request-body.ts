import type { IncomingMessage } from 'node:http'
import { isChunked, requestBodyLength } from './request-head.js'
import { ChunkedScanner } from '@switchyard/core/internal'

/**
 * The bytes the client still owes its request before the upstream answers (a Content-Length body,
 * hixie-76's 8 key bytes, or a chunked body up to its last chunk): forwarded at once, as Envoy ≤1.8 did;
 * whatever follows them is payload, held until the upstream switches protocols.
 */
export class RequestBody {
  /** Bytes still owed; `Infinity` while a chunked body has not ended. */
  #left: number
  readonly #scanner: ChunkedScanner | undefined

  constructor (req: IncomingMessage) {
    if (isChunked(req)) {
      this.#scanner = new ChunkedScanner()
      this.#left = Number.POSITIVE_INFINITY
    } else {
      this.#left = requestBodyLength(req)
    }
  }

  /** True once the request is complete: every later client byte is payload. */
  get complete (): boolean {
    return this.#left === 0
  }

  /**
   * How many leading bytes of `chunk` belong to the request (and counts them off). Throws on a malformed
   * chunked body (RFC 9112 §7.1), which the caller answers with 400.
   */
  take (chunk: Buffer): number {
    const scanner = this.#scanner
    if (scanner === undefined || this.#left === 0) {
      const n = Math.min(this.#left, chunk.length)
      this.#left -= n
      return n
    }
    const end = scanner.push(chunk)
    if (end === -1) return chunk.length
    this.#left = 0
    return end
  }
}
