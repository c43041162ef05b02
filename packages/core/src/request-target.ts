import type { IncomingMessage } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http2'

/** Counted for every request refused for its Host, `:authority` or absolute-form authority (Envoy's `http.invalid_authority`). */
export const INVALID_AUTHORITY_STAT = 'downstream_rq_invalid_authority'

/** Longest authority accepted: a DNS name is at most 255 octets (RFC 1035 §2.3.4); a longer Host once aborted Envoy setting it as SNI (CVE-2024-32475). */
export const MAX_AUTHORITY_LENGTH = 255

/** RFC 3986 §3.2.2 reg-name (unreserved, pct-encoded, sub-delims; IPv4 is a reg-name too). */
const REG_NAME = /^[A-Za-z0-9\-._~%!$&'()*+,;=]*$/
/** RFC 3986 §3.2.2 IP-literal: an IPv6 address or IPvFuture between brackets. */
const IP_LITERAL = /^\[[0-9A-Za-z:.\-_~%!$&'()*+,;=]+\]$/
const PORT = /^\d{0,5}$/
/** RFC 9112 §3.2.2 absolute-form of an `http` or `https` URI: scheme, authority, then path and query. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)/i

/**
 * Why `value` is not a valid Host or `:authority` (RFC 9110 §7.2: `uri-host [ ":" port ]`), or null.
 * Refused: userinfo (RFC 9110 §4.2.4: a recipient treats it as an error), an unbalanced or misplaced
 * bracket, a character outside RFC 3986's host grammar (a space, `/`, a control character…), a port that
 * is not a number up to 65535, and more than `MAX_AUTHORITY_LENGTH` characters.
 */
export function authorityProblem (value: string): string | null {
  if (value.length > MAX_AUTHORITY_LENGTH) return `longer than ${MAX_AUTHORITY_LENGTH} characters`
  if (value.includes('@')) return 'userinfo is not allowed'
  let port = ''
  if (value.startsWith('[')) {
    const close = value.indexOf(']')
    if (close === -1) return 'unbalanced bracket'
    const rest = value.slice(close + 1)
    if (rest !== '' && !rest.startsWith(':')) return 'unexpected characters after the IP literal'
    if (!IP_LITERAL.test(value.slice(0, close + 1))) return 'invalid IP literal'
    port = rest.slice(1)
  } else {
    const colon = value.lastIndexOf(':')
    const host = colon === -1 ? value : value.slice(0, colon)
    if (colon !== -1) port = value.slice(colon + 1)
    if (!REG_NAME.test(host)) return /[[\]]/.test(host) ? 'unbalanced bracket' : 'a character not allowed in a host name'
  }
  if (!PORT.test(port) || Number(port) > 65535) return 'invalid port'
  return null
}

/**
 * Checks the target of an HTTP/1.x request before it is routed, and puts an absolute-form target in
 * origin-form. RFC 9112 §3.2.2: a server must accept absolute-form; it routes by its path and takes the
 * authority as the Host, ignoring any Host header (the request's `url`, `headers.host` and `rawHeaders`
 * are rewritten in place, so routing, hooks and every upstream leg see one Host). Returns why the
 * request must be refused with 400 (RFC 9112 §3.2: more than one Host line, or an invalid Host), or null.
 */
export function normaliseHttp1Target (req: IncomingMessage): string | null {
  const raw = req.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++
  if (hosts > 1) return 'more than one Host header'
  const url = req.url ?? '/'
  if (url.charCodeAt(0) !== 47 /* '/' */ && url !== '*') {
    const absolute = ABSOLUTE_FORM.exec(url)
    if (absolute !== null) {
      const authority = absolute[1]!
      if (authority === '') return 'empty authority in the absolute-form target'
      const problem = authorityProblem(authority)
      if (problem !== null) return problem
      const rest = absolute[2]!
      req.url = rest === '' ? '/' : rest.charCodeAt(0) === 63 /* '?' */ ? `/${rest}` : rest
      setHost(req, authority)
      return null
    }
  }
  const host = req.headers.host
  return host === undefined ? null : authorityProblem(host)
}

/** Replaces the Host (or adds it first) in `rawHeaders` and the parsed headers. */
function setHost (req: IncomingMessage, authority: string): void {
  const raw = req.rawHeaders
  let replaced = false
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== 'host') continue
    raw[i + 1] = authority
    replaced = true
  }
  if (!replaced) raw.unshift('Host', authority)
  req.headers.host = authority
}

/**
 * Why an HTTP/2 request's authority is malformed (RFC 9113 §8.3.1: a stream error PROTOCOL_ERROR), or
 * null: an invalid `:authority` or `host`, or both present and naming different hosts (a request routed
 * by one and forwarded with the other). nghttp2 checks only the characters of `:authority`.
 */
export function http2AuthorityProblem (headers: IncomingHttpHeaders): string | null {
  const authority = headers[':authority']
  const host = headers.host
  for (const value of [authority, host]) {
    if (typeof value !== 'string') continue
    const problem = authorityProblem(value)
    if (problem !== null) return problem
  }
  if (typeof authority === 'string' && typeof host === 'string' && authority.toLowerCase() !== host.toLowerCase()) {
    return ':authority and host differ'
  }
  return null
}
