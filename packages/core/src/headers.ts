import type { IncomingMessage } from 'node:http'

/** Lower-case-keyed headers, the shape filters see and mutate in place. Repeated headers are arrays. */
export type Headers = Record<string, string | string[]>

/** Comma-list tokens of a header, lower-cased and trimmed, empty tokens dropped (RFC 9110 §5.6.1). */
export function headerTokens (value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  const joined = Array.isArray(value) ? value.join(',') : value
  const out: string[] = []
  for (const t of joined.split(',')) {
    const token = t.trim().toLowerCase()
    if (token !== '') out.push(token)
  }
  return out
}

export function firstValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/**
 * An upgrade is an `Upgrade` header together with the `upgrade` token in `Connection` (RFC 9110 §7.8;
 * Envoy `Utility::isUpgrade`). Returns the lower-cased upgrade type, or null.
 */
export function upgradeTypeOf (headers: IncomingMessage['headers'] | Headers): string | null {
  const upgrade = firstValue(headers.upgrade)
  if (upgrade === undefined || upgrade.trim() === '') return null
  if (!headerTokens(headers.connection).includes('upgrade')) return null
  return upgrade.trim().toLowerCase()
}

/** Headers from `rawHeaders`, keys lower-cased, order kept, repeats gathered into arrays. */
export function headersFromRaw (raw: string[]): Headers {
  const out: Headers = {}
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase()
    const value = raw[i + 1]!
    const prev = out[key]
    if (prev === undefined) out[key] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[key] = [prev, value]
  }
  return out
}

/**
 * Envoy's HTTP/1 codec strips `Upgrade: h2c`, `HTTP2-Settings` and their `Connection` tokens, so an h2c
 * upgrade is served as a plain request and can never be tunnelled (RFC 9113 §3.1 removed h2c upgrade).
 * Mutates the request in place (parsed and raw headers). Returns true when something was stripped.
 */
export function stripH2cUpgrade (req: IncomingMessage): boolean {
  const upgrade = firstValue(req.headers.upgrade)
  if (upgrade === undefined || !headerTokens(upgrade).includes('h2c')) return false
  stripUpgradeFields(req, ['upgrade', 'http2-settings'])
  return true
}

/**
 * RFC 9110 §7.8: a server must ignore `Upgrade` in an HTTP/1.0 request, so it is served as a plain request:
 * `Upgrade` and the `upgrade` Connection token are removed in place. Returns true when something was.
 */
export function ignoreHttp10Upgrade (req: IncomingMessage): boolean {
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor !== 0 || req.headers.upgrade === undefined) return false
  stripUpgradeFields(req, ['upgrade'])
  return true
}

/** Removes `fields` and their `Connection` tokens (with `upgrade`) from a request's parsed and raw headers. */
function stripUpgradeFields (req: IncomingMessage, fields: readonly string[]): void {
  const connection = headerTokens(req.headers.connection).filter(t => t !== 'upgrade' && !fields.includes(t))
  const raw: string[] = []
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const key = req.rawHeaders[i]!.toLowerCase()
    if (fields.includes(key)) continue
    if (key === 'connection') {
      if (connection.length > 0) raw.push(req.rawHeaders[i]!, connection.join(', '))
      continue
    }
    raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
  }
  // rawHeaders is a plain array; `headers` is cached lazily from it, so rewrite both.
  req.rawHeaders.length = 0
  req.rawHeaders.push(...raw)
  const h = req.headers
  for (const field of fields) delete h[field]
  if (connection.length > 0) h.connection = connection.join(', ')
  else delete h.connection
}

/**
 * Connection-specific header fields (RFC 9110 §7.6.1), which HTTP/2 forbids (RFC 9113 §8.2.2): the one list
 * every hop-by-hop rule below is made of.
 */
export const connectionSpecificHeaders: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings'
])

/**
 * Dropped from an upgrade's upstream request (Envoy's HTTP/1 codec): the connection-specific fields
 * except `Upgrade` and `Connection`, which make it an upgrade (`HTTP2-Settings` goes with h2c, earlier).
 */
export const upgradeHopByHop: readonly string[] = ['transfer-encoding', 'keep-alive', 'proxy-connection', 'te']

/** Never forwarded on a plain request; `expect` is answered by this hop (Node sends the 100 Continue). */
export const hopByHopRequest: readonly string[] = [...connectionSpecificHeaders, 'expect']

/** Request headers for the upstream leg of an HTTP/1.1 upgrade: `Upgrade`/`Connection` kept, `Content-Length` as sent. */
export function sanitizeUpgradeRequestHeaders (headers: Headers): void {
  for (const key of upgradeHopByHop) delete headers[key]
}

/** Response hop-by-hop headers, dropped before a plain response is relayed (RFC 9110 §7.6.1). */
export const hopByHopResponse: ReadonlySet<string> = new Set([...connectionSpecificHeaders, 'trailer'])

/** Appends the peer address to `x-forwarded-for` and sets `x-forwarded-proto` (Envoy with `use_remote_address`). */
export function addForwardingHeaders (headers: Headers, remoteAddress: string | undefined, proto: 'http' | 'https'): void {
  if (remoteAddress !== undefined) {
    const prev = headers['x-forwarded-for']
    const joined = Array.isArray(prev) ? prev.join(', ') : prev
    headers['x-forwarded-for'] = joined ? `${joined}, ${remoteAddress}` : remoteAddress
  }
  headers['x-forwarded-proto'] = proto
}

/**
 * Serialises a response or request head; arrays become repeated lines. Headers from filters have been
 * through `checkHeaders`; a value with CR, LF or NUL is still refused here, the last line before the wire.
 */
export function serializeHeaders (headers: Headers): string {
  let out = ''
  for (const key in headers) {
    const value = headers[key]!
    if (Array.isArray(value)) {
      for (const v of value) out += `${key}: ${checkValue(v)}\r\n`
    } else {
      out += `${key}: ${checkValue(value)}\r\n`
    }
  }
  return out
}

function checkValue (value: string | number): string {
  const s = String(value)
  if (/[\r\n\0]/.test(s)) throw new Error('header value contains CR, LF or NUL')
  return s
}

/** RFC 9110 §5.1: a field name is a token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** RFC 9110 §5.5: a field value has no CR, LF, NUL or other control character but HTAB. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/

/**
 * The one check of headers on their way to the wire (after the filters, before a transport or the
 * downstream writes them): a name that is not a token, or a value with CR, LF or another control
 * character, would split a head or make Node throw where the stream cannot answer. Returns the first
 * problem (`name` quoted for a log line), or null. Values may be numbers (a filter's `content-length: 5`).
 */
export function checkHeaders (headers: Headers): { key: string, name: string, reason: string } | null {
  for (const key in headers) {
    const name = JSON.stringify(key.slice(0, 64))
    if (!TOKEN.test(key)) return { key, name, reason: 'the name is not a token' }
    const value = headers[key] as unknown
    const values = Array.isArray(value) ? value as unknown[] : [value]
    for (const v of values) {
      if (typeof v !== 'string' && typeof v !== 'number') return { key, name, reason: 'the value is not a string' }
      if (BAD_VALUE.test(String(v))) return { key, name, reason: 'the value has CR, LF, NUL or another control character' }
    }
  }
  return null
}
