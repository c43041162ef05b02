import type { ClusterOptions } from './plugin-options.js'

export interface Endpoint {
  host: string
  port: number
  secure: boolean
  /** `http://host:port` — the origin plain requests are sent to. */
  origin: string
  /** `host:port` as an auto host rewrite writes it. */
  authority: string
}

/** Parses `host:port`, `[v6]:port`, `http://host:port` or `https://host:port`. Throws with the reason. */
export function parseEndpoint (spec: string): Endpoint {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(spec) ? new URL(spec) : new URL(`http://${spec}`)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported scheme ${url.protocol}`)
  if (url.pathname !== '/' || url.search !== '' || url.username !== '') throw new Error('an endpoint is only a scheme, host and port')
  const secure = url.protocol === 'https:'
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  return { host, port, secure, origin: `${url.protocol}//${url.host}`, authority: url.host }
}

/** A named upstream: endpoints picked round robin (Envoy's default load balancer for these cases). */
export class Cluster {
  readonly name: string
  readonly endpoints: readonly Endpoint[]
  readonly protocol: 'http1' | 'http2'
  readonly tls: Record<string, unknown> | undefined
  readonly connectTimeout: number
  #next = 0

  constructor (name: string, options: ClusterOptions) {
    this.name = name
    this.endpoints = options.endpoints.map(parseEndpoint)
    this.protocol = options.protocol ?? 'http1'
    this.tls = options.tls as Record<string, unknown> | undefined
    this.connectTimeout = options.connectTimeout ?? 5000
  }

  pick (): Endpoint {
    const endpoint = this.endpoints[this.#next % this.endpoints.length]!
    this.#next = (this.#next + 1) % this.endpoints.length
    return endpoint
  }
}
