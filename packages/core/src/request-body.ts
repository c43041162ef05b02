import { Readable } from 'node:stream'

/**
 * Envoy's retry buffer: the most request body bytes a proxied request keeps so a retry (or a mirror that
 * starts late) can send the body again (`per_request_buffer_limit_bytes`, 1 MiB by default). Past it the
 * body is only streamed, and the request is not retried.
 */
export const RETRY_BUFFER_LIMIT = 1024 * 1024

export interface RequestBodyInit {
  /** Bytes kept for a resend: `RETRY_BUFFER_LIMIT` when the route retries, 0 when nothing can be resent. */
  retain: number
  /** Bytes queued for an attempt that has not read them before `write` reports backpressure. */
  highWaterMark: number
  /** The attempt in flight wants more: the source may be read again. */
  onDrain: () => void
  /** The body outgrew what may be kept: no attempt may start over from its first byte any more. */
  onOverflow: () => void
}

/**
 * The body of one proxied request on its way upstream, streamed (never read whole): each attempt gets a
 * Readable that starts with whatever the attempt has to send again, then follows the client's bytes, with
 * backpressure from the attempt to the client. A copy for a mirror follows the same bytes and is dropped
 * if it falls behind; it never slows the request down.
 */
export class RequestBody {
  readonly #init: RequestBodyInit
  /** Every byte so far, while it fits `retain`; null once it did not. */
  #kept: Buffer[] | null = []
  #keptBytes = 0
  /** Bytes no attempt has taken yet (when nothing is kept for a resend). */
  #pending: Buffer[] = []
  #pendingBytes = 0
  #ended = false
  #attempt: AttemptBody | undefined
  #mirror: AttemptBody | undefined

  constructor (init: RequestBodyInit) {
    this.#init = init
    if (init.retain === 0) this.#kept = null
  }

  /** True once an attempt took bytes that are not kept: a mirror opened now would miss them. */
  #handedOut = false

  /** A chunk of the body (after the filters); `end` marks its last. False: stop reading the source for now. */
  write (chunk: Buffer, end: boolean): boolean {
    if (this.#ended) return true
    if (chunk.length > 0) {
      this.#keep(chunk)
      if (this.#mirror !== undefined) this.#toMirror(chunk)
    }
    if (end) {
      this.#ended = true
      this.#mirror?.push(null)
    }
    const attempt = this.#attempt
    if (attempt !== undefined && !attempt.destroyed) {
      const more = chunk.length === 0 || attempt.push(chunk)
      if (end) attempt.push(null)
      return more
    }
    if (this.#kept === null && chunk.length > 0) {
      this.#pending.push(chunk)
      this.#pendingBytes += chunk.length
    }
    return (this.#kept === null ? this.#pendingBytes : this.#keptBytes) < this.#init.highWaterMark
  }

  /** The body for a new attempt: what it must send again first, then the client's bytes as they come. */
  open (): Readable {
    this.#attempt?.destroy()
    const body = new AttemptBody(this.#init.highWaterMark, () => this.#init.onDrain())
    this.#attempt = body
    this.#handedOut = true
    const replay = this.#kept ?? this.#pending
    for (const chunk of replay) body.push(chunk)
    this.#pending = []
    this.#pendingBytes = 0
    if (this.#ended) body.push(null)
    body.once('close', () => { if (this.#attempt === body) this.#attempt = undefined })
    return body
  }

  /** A copy for a mirror, from the first byte; undefined when those bytes are no longer kept. */
  openMirror (): Readable | undefined {
    if (this.#kept === null && this.#handedOut) return undefined
    const body = new AttemptBody(this.#init.highWaterMark, noop)
    for (const chunk of this.#kept ?? this.#pending) body.push(chunk)
    if (this.#ended) body.push(null)
    else this.#mirror = body
    body.once('close', () => { if (this.#mirror === body) this.#mirror = undefined })
    return body
  }

  /** The request is over: whatever is still queued is let go. */
  close (): void {
    this.#kept = null
    this.#pending = []
    this.#attempt?.destroy()
    this.#mirror?.destroy()
    this.#attempt = undefined
    this.#mirror = undefined
  }

  #keep (chunk: Buffer): void {
    const kept = this.#kept
    if (kept === null) return
    if (this.#keptBytes + chunk.length <= this.#init.retain) {
      kept.push(chunk)
      this.#keptBytes += chunk.length
      return
    }
    // Too large to send again. An attempt about to start (the first, or a retry already decided) still gets
    // every byte: they move to pending; the one in flight has them already.
    this.#kept = null
    this.#keptBytes = 0
    if (this.#attempt === undefined || this.#attempt.destroyed) {
      this.#pending = kept
      this.#pendingBytes = kept.reduce((n, c) => n + c.length, 0)
    }
    this.#init.onOverflow()
  }

  #toMirror (chunk: Buffer): void {
    const mirror = this.#mirror!
    // A mirror never holds the request back: one that falls a few windows behind is dropped.
    if (mirror.readableLength > 4 * this.#init.highWaterMark) {
      mirror.destroy()
      this.#mirror = undefined
      return
    }
    mirror.push(chunk)
  }
}

/** One attempt's body: a Readable the transport reads; reading asks the source for more. */
class AttemptBody extends Readable {
  readonly #onRead: () => void
  constructor (highWaterMark: number, onRead: () => void) {
    super({ highWaterMark })
    this.#onRead = onRead
  }

  override _read (): void {
    this.#onRead()
  }
}

function noop (): void {}
