import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2'
import { connectionSpecificHeaders as connectionSpecific, firstValue as first, headerTokens, type Headers } from '@switchyard/core/internal'

/** The private header that carries the original method across an HTTP/2 hop (`preserveMethod`). */
export const METHOD_CARRIER = 'x-switchyard-original-method'

/** What an HTTP/1.1 upgrade becomes on an HTTP/2 hop. */
export interface ExtendedConnectTarget {
  upgradeType: string
  path: string
  secure: boolean
  /** Used when the request has no `Host`. */
  authority: string
}

/**
 * H1 upgrade → RFC 8441 extended CONNECT, as Envoy transforms it: `:method CONNECT`, `:protocol` = the
 * upgrade token, `:scheme`, `:authority` (from `Host`), `:path`; `upgrade`, `connection`, the headers
 * `connection` names and the other hop-by-hop headers removed; `content-length` removed only when it
 * is `0`; `sec-websocket-*` untouched. A repeated header becomes one field of values joined by `, `
 * (RFC 9110 §5.3), as undici sends a plain request over HTTP/2: Node refuses an array for the fields it
 * holds single-valued (`authorization`, `user-agent`…). `cookie` stays one field per value (RFC 9113 §8.2.3).
 */
export function toExtendedConnect (headers: Headers, target: ExtendedConnectTarget): OutgoingHttpHeaders {
  const host = first(headers.host)
  const out: OutgoingHttpHeaders = {
    ':method': 'CONNECT',
    ':protocol': target.upgradeType,
    ':scheme': target.secure ? 'https' : 'http',
    ':authority': host ?? target.authority,
    ':path': target.path
  }
  const named = new Set(headerTokens(headers.connection))
  for (const key in headers) {
    if (key === 'host' || key.startsWith(':') || connectionSpecific.has(key) || named.has(key)) continue
    const value = headers[key]!
    if (key === 'content-length' && first(value)?.trim() === '0') continue
    out[key] = Array.isArray(value) && key !== 'cookie' ? value.join(', ') : value
  }
  return out
}

/**
 * An HTTP/1.1-shaped CONNECT → an HTTP/2 CONNECT (RFC 9113 §8.5): `:method CONNECT` and `:authority`
 * (the target) only — no `:scheme`, no `:path`, no `:protocol` — and the regular headers without `host`
 * and the connection-specific ones.
 */
export function toPlainConnect (headers: Headers, authority: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':method': 'CONNECT', ':authority': authority }
  const named = new Set(headerTokens(headers.connection))
  for (const key in headers) {
    if (key === 'host' || key === 'content-length' || key.startsWith(':') || connectionSpecific.has(key) || named.has(key)) continue
    out[key] = headers[key]!
  }
  return out
}

/**
 * The 200 to an extended CONNECT → an HTTP/1.1 101: `upgrade: <type>`, `connection: upgrade`; pseudo
 * headers, hop-by-hop headers and a zero `content-length` removed.
 */
export function acceptedAsUpgrade (headers: IncomingHttpHeaders, upgradeType: string): Headers {
  const out = plainHeaders(headers)
  if (first(out['content-length'])?.trim() === '0') delete out['content-length']
  out.upgrade = upgradeType
  out.connection = 'upgrade'
  return out
}

/** Any other answer to an extended CONNECT: passed through untouched, pseudo headers dropped. */
export function plainHeaders (headers: IncomingHttpHeaders): Headers {
  const out: Headers = {}
  for (const key in headers) {
    if (key.startsWith(':') || connectionSpecific.has(key)) continue
    const value = headers[key]
    if (value === undefined) continue
    out[key] = Array.isArray(value) ? value : String(value)
  }
  return out
}

/**
 * An HTTP/1.1 answer → HTTP/2 response headers: a 101 becomes 200 (Envoy: `upgrade`, `connection` and a
 * zero `content-length` removed); connection-specific headers are never sent on HTTP/2.
 */
export function toHttp2Response (status: number, headers: Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': status === 101 ? 200 : status }
  const named = new Set(headerTokens(headers.connection))
  for (const key in headers) {
    if (key.startsWith(':') || connectionSpecific.has(key) || named.has(key)) continue
    const value = headers[key]!
    if (status === 101 && key === 'content-length' && first(value)?.trim() === '0') continue
    out[key] = value
  }
  return out
}

/** What an extended CONNECT becomes downstream of the hop (Envoy's H2 → H1 request transform). */
export interface DowngradedRequest {
  method: string
  upgradeType: string
  /** H1-shaped raw headers: `host` from `:authority`, no pseudo headers, `upgrade` and `connection` last. */
  rawHeaders: string[]
}

/**
 * A plain HTTP/2 CONNECT (no `:protocol`) → the HTTP/1.1 shape core routes: `Host` from `:authority`, the
 * regular headers, no pseudo headers, no `Upgrade`.
 */
export function fromPlainConnect (rawHeaders: readonly string[], authority: string): string[] {
  const raw: string[] = ['host', authority]
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const key = rawHeaders[i]!.toLowerCase()
    if (key.startsWith(':') || key === 'host' || key === METHOD_CARRIER || connectionSpecific.has(key)) continue
    raw.push(rawHeaders[i]!, rawHeaders[i + 1]!)
  }
  return raw
}

/**
 * Extended CONNECT → HTTP/1.1 upgrade: `GET` (the reference's documented flaw) unless `method` says
 * otherwise, `Upgrade: <:protocol>`, `Connection: upgrade`, `Host` from `:authority`; `:protocol` and the
 * other pseudo headers removed. The method carrier is always removed here: the caller read it already.
 */
export function fromExtendedConnect (rawHeaders: readonly string[], protocol: string, authority: string | undefined, method: string): DowngradedRequest {
  const raw: string[] = []
  if (authority !== undefined) raw.push('host', authority)
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const key = rawHeaders[i]!.toLowerCase()
    if (key.startsWith(':') || key === 'host' || key === METHOD_CARRIER || connectionSpecific.has(key)) continue
    raw.push(rawHeaders[i]!, rawHeaders[i + 1]!)
  }
  raw.push('upgrade', protocol, 'connection', 'upgrade')
  return { method, upgradeType: protocol.toLowerCase(), rawHeaders: raw }
}
