export interface Endpoint {
  /** What to connect to: a host name or an IP address (no brackets). */
  host: string
  port: number
  secure: boolean
  /** `http://host:port` — the origin plain requests are sent to. */
  origin: string
  /** `host:port` as an auto host rewrite and a health check's `host` header write it. */
  authority: string
  /**
   * The DNS name a `strictDns` address was resolved from (`host` is then the IP): the name for TLS SNI.
   * Envoy's auto host rewrite on DNS clusters uses it too, which is why `authority` carries it.
   */
  hostname?: string
}

/** Parses `host:port`, `[v6]:port`, `http://host:port` or `https://host:port`. Throws with the reason. */
export function parseEndpoint (spec: string): Endpoint {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(spec) ? new URL(spec) : new URL(`http://${spec}`)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported scheme ${url.protocol}`)
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') throw new Error('an endpoint is only a scheme, host and port')
  const secure = url.protocol === 'https:'
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  return { host, port, secure, origin: `${url.protocol}//${url.host}`, authority: url.host }
}

/** The endpoint a `strictDns` name resolved to: connect to `address`, name it `name`. */
export function resolvedEndpoint (named: Endpoint, address: string): Endpoint {
  const scheme = named.secure ? 'https:' : 'http:'
  const host = address.includes(':') ? `[${address}]` : address
  const defaultPort = named.port === (named.secure ? 443 : 80)
  return {
    host: address,
    port: named.port,
    secure: named.secure,
    origin: `${scheme}//${host}${defaultPort ? '' : `:${named.port}`}`,
    authority: named.authority,
    hostname: named.host
  }
}

/** One key per upstream address, whatever way it was written (`a:80` = `http://a:80` = `http://a`). */
export function endpointKey (endpoint: Endpoint): string {
  return endpoint.origin
}
