import type { IncomingMessage } from 'node:http'
import type { UpstreamOptions } from '@switchyard/core'
import { addForwardingHeaders, rewriteHost, rewritePath, upgradeHopByHop, type Endpoint, type Headers, type RouteState } from '@switchyard/core/internal'

/**
 * Hop-by-hop headers never forwarded on an upgrade's upstream request (Envoy's HTTP/1 codec), and the
 * private `x-envoy-original-path`, which only the proxy sets (a client's is never trusted).
 * `Transfer-Encoding: chunked` is kept: the chunked body follows the head, as Envoy ≤1.8 forwarded it.
 */
const dropped = new Set([...upgradeHopByHop.filter(k => k !== 'transfer-encoding'), 'x-envoy-original-path'])
const forwarding = new Set(['x-forwarded-for', 'x-forwarded-proto'])

/**
 * The request head written onto the upstream TCP connection: Envoy ≤1.8 re-serialised the request
 * after the route's header finalisation. The client's header lines are kept in their order and case
 * (`Upgrade`, `Connection`, `Content-Length` as sent); the path gets the prefix rewrite, `Host` the
 * explicit or automatic host rewrite; `x-forwarded-for`/`x-forwarded-proto` are set as for every request.
 */
export function buildRequestHead (req: IncomingMessage, route: RouteState, upstream: UpstreamOptions, endpoint: Endpoint): string {
  const path = rewritePath(req.url ?? '/', route.prefix, upstream.prefixRewrite)
  const raw = req.rawHeaders
  const lines: string[] = []
  const fwd: Headers = {}
  let hostSeen = false
  let framed = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const key = name.toLowerCase()
    let value = raw[i + 1]!
    if (dropped.has(key)) continue
    if (key === 'transfer-encoding' && !isChunked(req)) continue
    if (key === 'content-length' || key === 'transfer-encoding' || key === 'sec-websocket-key1') framed = true
    if (forwarding.has(key)) {
      if (key === 'x-forwarded-for') fwd[key] = fwd[key] === undefined ? value : `${String(fwd[key])}, ${value}`
      continue
    }
    if (key === 'host') {
      if (hostSeen) continue
      hostSeen = true
      value = hostFor(value, upstream, endpoint)
    }
    lines.push(`${name}: ${checked(value)}`)
  }
  if (!hostSeen) {
    const host = hostFor(undefined, upstream, endpoint)
    if (host !== '') lines.unshift(`Host: ${checked(host)}`)
  }
  addForwardingHeaders(fwd, req.socket?.remoteAddress, (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true ? 'https' : 'http')
  lines.push(`x-forwarded-for: ${String(fwd['x-forwarded-for'])}`, `x-forwarded-proto: ${String(fwd['x-forwarded-proto'])}`)
  // Envoy's router records the path it rewrote; its HTTP/1 codec frames a body-less request with a zero length.
  if (path !== (req.url ?? '/')) lines.push(`x-envoy-original-path: ${checked(req.url ?? '/')}`)
  if (!framed) lines.push('content-length: 0')
  return `${req.method ?? 'GET'} ${checked(path)} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`
}

/** A configured value (hostRewrite, prefixRewrite) must never split the head (request smuggling). */
function checked (value: string): string {
  if (/[\r\n\0]/.test(value)) throw new Error('request head value contains CR, LF or NUL')
  return value
}

function hostFor (original: string | undefined, upstream: UpstreamOptions, endpoint: Endpoint): string {
  const headers: Headers = original === undefined ? {} : { host: original }
  rewriteHost(headers, upstream, endpoint)
  return (headers.host as string | undefined) ?? ''
}

/**
 * How many bytes after the request head belong to the request and are forwarded before the upstream
 * answers: the `Content-Length` as sent, else 8 for a hixie-76 handshake (draft-hixie-thewebsocketprotocol-76
 * §4.1: the client sends 8 key bytes after its head, with no Content-Length, and the server needs them
 * to compute its answer). RFC 6455 §4.1 clients send nothing before the 101: 0.
 */
export function requestBodyLength (req: IncomingMessage): number {
  const raw = req.rawHeaders
  let key1 = false
  let key2 = false
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase()
    if (key === 'content-length') {
      const n = Number(raw[i + 1]!.trim())
      if (Number.isSafeInteger(n) && n >= 0) return n
    } else if (key === 'sec-websocket-key1') key1 = true
    else if (key === 'sec-websocket-key2') key2 = true
  }
  return key1 && key2 ? 8 : 0
}

/**
 * A request whose body is chunked (RFC 9112 §6.1: `chunked` is the final transfer coding). Read from the
 * raw headers: core removes the parsed `transfer-encoding` of an upgrade before Fastify sees it.
 */
export function isChunked (req: IncomingMessage): boolean {
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'transfer-encoding') return /(?:^|,)\s*chunked\s*$/i.test(raw[i + 1]!)
  }
  return false
}
