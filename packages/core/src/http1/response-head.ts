const CRLFCRLF = Buffer.from('\r\n\r\n')

/** The most bytes an upstream's response head may take (Node's default `maxHeaderSize` is 16 KiB). */
export const MAX_RESPONSE_HEAD = 64 * 1024

/** An upstream's HTTP/1.x response head (an upgrade's answer, or the legacy mode's smuggling guard). */
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

