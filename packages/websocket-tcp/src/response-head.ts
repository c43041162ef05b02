const CRLFCRLF = Buffer.from('\r\n\r\n')

/** The most bytes an upstream's response head may take (Node's default `maxHeaderSize` is 16 KiB). */
export const MAX_RESPONSE_HEAD = 64 * 1024

/** An upstream's response head, read before the pipe opens (the smuggling guard). */
export interface ResponseHead {
  statusCode: number
  /** The status line as sent, without its CRLF. */
  statusLine: string
  /** Header lines as `[name, value, name, value, …]`, like Node's `rawHeaders`. */
  rawHeaders: string[]
  /** Bytes the head takes, final CRLFCRLF included: what follows is body or tunnelled payload. */
  length: number
}

/**
 * Parses a response head at the start of `buf`: null while it is incomplete, throws with the reason when
 * it is not HTTP/1.x (RFC 9112 §4: `HTTP/1.x SP 3DIGIT SP reason`, then field lines, then CRLF).
 */
export function parseResponseHead (buf: Buffer): ResponseHead | null {
  const end = buf.indexOf(CRLFCRLF)
  if (end === -1) {
    if (buf.length > MAX_RESPONSE_HEAD) throw new Error(`a response head over ${MAX_RESPONSE_HEAD} bytes`)
    return null
  }
  // A complete head may arrive in one read past the limit: it is refused all the same.
  if (end + 4 > MAX_RESPONSE_HEAD) throw new Error(`a response head over ${MAX_RESPONSE_HEAD} bytes`)
  const lines = buf.toString('latin1', 0, end).split('\r\n')
  const statusLine = lines[0]!
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine)
  if (m === null) throw new Error(`a status line that is not HTTP/1.x: ${JSON.stringify(statusLine.slice(0, 64))}`)
  const rawHeaders: string[] = []
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    if (colon <= 0) throw new Error(`a malformed header line: ${JSON.stringify(line.slice(0, 64))}`)
    rawHeaders.push(line.slice(0, colon), line.slice(colon + 1).trim())
  }
  return { statusCode: Number(m[1]), statusLine, rawHeaders, length: end + 4 }
}

/** How the body of a relayed (non-101) response ends (RFC 9112 §6.3). */
export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length', length: number }
  | { kind: 'chunked' }
  | { kind: 'close' }

export function bodyFraming (head: ResponseHead, requestMethod: string): BodyFraming {
  const { statusCode } = head
  if (requestMethod === 'HEAD' || statusCode === 204 || statusCode === 304 || (statusCode >= 100 && statusCode < 200)) return { kind: 'none' }
  let length: number | undefined
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    const key = head.rawHeaders[i]!.toLowerCase()
    const value = head.rawHeaders[i + 1]!
    // Transfer-Encoding overrides Content-Length; chunked must be the final coding, else the body ends at close.
    if (key === 'transfer-encoding') return /(?:^|,)\s*chunked\s*$/i.test(value) ? { kind: 'chunked' } : { kind: 'close' }
    if (key === 'content-length') {
      const n = Number(value)
      if (Number.isSafeInteger(n) && n >= 0) length = n
    }
  }
  return length === undefined ? { kind: 'close' } : { kind: 'length', length }
}

/**
 * The response head relayed to the client when the upstream refused the upgrade: the status line and
 * header lines as sent, except `Connection`/`Keep-Alive`, replaced by `Connection: close` — the
 * connection ends after this response, and nothing the client sends next is read.
 */
export function closingHead (head: ResponseHead): string {
  let out = `${head.statusLine}\r\n`
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    const key = head.rawHeaders[i]!.toLowerCase()
    if (key === 'connection' || key === 'keep-alive') continue
    out += `${head.rawHeaders[i]!}: ${head.rawHeaders[i + 1]!}\r\n`
  }
  return `${out}Connection: close\r\n\r\n`
}

const LF = 0x0a
const CR = 0x0d

/**
 * Finds where a chunked body ends (RFC 9112 §7.1: chunks, a last chunk `0`, trailer lines, CRLF) without
 * changing a byte, so the body is relayed as sent. `push` returns the index in `chunk` just after the
 * end of the body, or -1 when more is needed; throws on a malformed chunk size or a line not ended by
 * CRLF (a bare LF is refused: two parsers that disagree on line ends are a request smuggling vector).
 */
export class ChunkedScanner {
  #state: 'size' | 'sizeLF' | 'data' | 'dataCR' | 'dataLF' | 'trailer' | 'trailerLF' | 'done' = 'size'
  #line = ''
  #remaining = 0
  #trailerLine = 0

  push (chunk: Buffer): number {
    let i = 0
    while (i < chunk.length) {
      switch (this.#state) {
        case 'size': {
          const byte = chunk[i++]!
          if (byte === LF) throw new Error('a chunk size line ended by a bare LF')
          if (byte !== CR) {
            if (this.#line.length > 1024) throw new Error('a chunk size line over 1024 bytes')
            this.#line += String.fromCharCode(byte)
            break
          }
          this.#state = 'sizeLF'
          break
        }
        case 'sizeLF': {
          if (chunk[i++] !== LF) throw new Error('a chunk size line with a CR not followed by LF')
          const hex = this.#line.split(';')[0]!.trim()
          this.#line = ''
          if (!/^[0-9a-fA-F]{1,15}$/.test(hex)) throw new Error(`a malformed chunk size: ${JSON.stringify(hex.slice(0, 32))}`)
          this.#remaining = parseInt(hex, 16)
          if (this.#remaining === 0) {
            this.#state = 'trailer'
            this.#trailerLine = 0
          } else {
            this.#state = 'data'
          }
          break
        }
        case 'data': {
          const take = Math.min(this.#remaining, chunk.length - i)
          i += take
          this.#remaining -= take
          if (this.#remaining === 0) this.#state = 'dataCR'
          break
        }
        case 'dataCR':
          if (chunk[i++] !== CR) throw new Error('chunk data not followed by CRLF')
          this.#state = 'dataLF'
          break
        case 'dataLF':
          if (chunk[i++] !== LF) throw new Error('chunk data not followed by CRLF')
          this.#state = 'size'
          break
        case 'trailer': {
          const byte = chunk[i++]!
          if (byte === LF) throw new Error('a trailer line ended by a bare LF')
          if (byte === CR) this.#state = 'trailerLF'
          else this.#trailerLine++
          break
        }
        case 'trailerLF': {
          if (chunk[i++] !== LF) throw new Error('a trailer line with a CR not followed by LF')
          if (this.#trailerLine === 0) {
            this.#state = 'done'
            return i
          }
          this.#trailerLine = 0
          this.#state = 'trailer'
          break
        }
        case 'done':
          return i
      }
    }
    return this.#state === 'done' ? i : -1
  }
}
