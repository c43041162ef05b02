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
  const connection = headerTokens(req.headers.connection).filter(t => t !== 'upgrade' && t !== 'http2-settings')
  const raw: string[] = []
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const key = req.rawHeaders[i]!.toLowerCase()
    if (key === 'upgrade' || key === 'http2-settings') continue
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
  delete h.upgrade
  delete h['http2-settings']
  if (connection.length > 0) h.connection = connection.join(', ')
  else delete h.connection
  return true
}

/** Hop-by-hop headers never forwarded on an upgrade's upstream request (Envoy's H1 codec): `Upgrade` and `Connection` stay. */
const upgradeRequestDropped = ['transfer-encoding', 'keep-alive', 'proxy-connection', 'te']

/**
 * Connection-specific request headers (RFC 9110 §7.6.1, RFC 9113 §8.2.2): never forwarded on a plain
 * request, never sent on HTTP/2. `expect` is answered by this hop (Node sends the 100 Continue).
 */
export const hopByHopRequest = ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'http2-settings', 'expect']

/** Request headers for the upstream leg of an HTTP/1.1 upgrade: `Upgrade`/`Connection` kept, `Content-Length` as sent. */
export function sanitizeUpgradeRequestHeaders (headers: Headers): void {
  for (const key of upgradeRequestDropped) delete headers[key]
}

/** Response hop-by-hop headers, dropped before a plain response is relayed (RFC 9110 §7.6.1). */
export const hopByHopResponse = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'])

/** Appends the peer address to `x-forwarded-for` and sets `x-forwarded-proto` (Envoy with `use_remote_address`). */
export function addForwardingHeaders (headers: Headers, remoteAddress: string | undefined, proto: 'http' | 'https'): void {
  if (remoteAddress !== undefined) {
    const prev = headers['x-forwarded-for']
    const joined = Array.isArray(prev) ? prev.join(', ') : prev
    headers['x-forwarded-for'] = joined ? `${joined}, ${remoteAddress}` : remoteAddress
  }
  headers['x-forwarded-proto'] = proto
}

/** Serialises a response or request head; arrays become repeated lines. Values with CR/LF are refused. */
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
