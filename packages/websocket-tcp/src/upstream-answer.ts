import { parseResponseHead, type ResponseHead } from '@switchyard/core/internal'

/** What the upstream's bytes amount to so far. */
export type Answer =
  | { kind: 'incomplete' }
  /** A 1xx other than 101: relayed as sent; the final answer follows. */
  | { kind: 'interim', bytes: Buffer }
  /** 101: the answer's bytes so far (its head, `headLength` bytes, and any payload after it) open the pipe. */
  | { kind: 'switched', bytes: Buffer, headLength: number }
  /** Any other final answer: relayed, and nothing is tunnelled. `rest` is what followed its head. */
  | { kind: 'refused', head: ResponseHead, rest: Buffer }

const EMPTY = Buffer.alloc(0)

/**
 * Reads the upstream's answer to the re-serialised WebSocket handshake (the smuggling guard): bytes
 * are gathered until a response head parses, interim answers are passed on one at a time, and the
 * first final answer decides whether the pipe opens. Throws on bytes that are not an HTTP/1.x response.
 */
export class UpstreamAnswer {
  #bytes: Buffer = EMPTY

  push (chunk: Buffer): Answer {
    this.#bytes = this.#bytes.length === 0 ? chunk : Buffer.concat([this.#bytes, chunk])
    return this.next()
  }

  /** The next answer in what was gathered (after an interim one, call again). */
  next (): Answer {
    const head = parseResponseHead(this.#bytes)
    if (head === null) return { kind: 'incomplete' }
    const bytes = this.#bytes
    if (head.statusCode === 101) {
      this.#bytes = EMPTY
      return { kind: 'switched', bytes, headLength: head.length }
    }
    if (head.statusCode >= 100 && head.statusCode < 200) {
      this.#bytes = bytes.subarray(head.length)
      return { kind: 'interim', bytes: bytes.subarray(0, head.length) }
    }
    this.#bytes = EMPTY
    return { kind: 'refused', head, rest: bytes.subarray(head.length) }
  }
}
