import net from 'node:net'

/** The target of a CONNECT: RFC 9110 §9.3.6 and RFC 9112 §3.2.3, `authority-form = uri-host ":" port`. */
export interface ConnectTarget {
  /** A registered name or an IP address, without brackets. */
  host: string
  port: number
  /** `host:port` as the client wrote it (`[v6]:port` for IPv6). */
  authority: string
}

/** RFC 3986 §3.2.2 reg-name: unreserved, pct-encoded and sub-delims. */
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/

/**
 * Reads a CONNECT target. Returns the reason it is not `host:port` instead (origin-form, absolute-form,
 * userinfo, no port, port 0 or over 65535, a host that is no name or address): a proxy must not guess.
 */
export function parseConnectTarget (target: string | undefined): ConnectTarget | { problem: string } {
  if (target === undefined || target === '') return { problem: 'empty' }
  if (target.startsWith('/')) return { problem: 'origin-form (a path), not host:port' }
  if (target.includes('@')) return { problem: 'userinfo is not allowed' }
  if (/[/?#\s]/.test(target)) return { problem: 'absolute-form or a path, not host:port' }
  if (target.length > 255 + 6) return { problem: 'longer than a host and a port' }
  let host: string
  let rest: string
  if (target.startsWith('[')) {
    const close = target.indexOf(']')
    if (close === -1) return { problem: 'an unbalanced bracket' }
    host = target.slice(1, close)
    if (!net.isIPv6(host)) return { problem: 'an IP literal that is not IPv6' }
    rest = target.slice(close + 1)
    if (!rest.startsWith(':')) return { problem: 'no port' }
    rest = rest.slice(1)
  } else {
    const colon = target.lastIndexOf(':')
    if (colon === -1) return { problem: 'no port' }
    host = target.slice(0, colon)
    rest = target.slice(colon + 1)
    if (host.includes(':')) return { problem: 'an IPv6 address without brackets' }
    if (host === '' || !REG_NAME.test(host)) return { problem: 'the host is not a name or an address' }
    if (host.length > 255) return { problem: 'a host longer than 255 characters' }
  }
  if (!/^\d{1,5}$/.test(rest)) return { problem: 'no port' }
  const port = Number(rest)
  if (port < 1 || port > 65535) return { problem: `port ${rest} is out of range (1-65535)` }
  return { host, port, authority: target }
}

/**
 * A CONNECT route's url as find-my-way must read it to match the authority literally: every `:` that does
 * not start a path segment is doubled (`/db.internal:5432` → `/db.internal::5432`, `/[::1]:443` too), so
 * only a segment that starts with `:` is a parameter (`/:target`).
 */
export function literalAuthorityPath (url: string): string {
  return url.replace(/(?<!\/):/g, '::')
}
