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

/** One endpoint of a cluster as the load balancer sees it. */
export class Host {
  readonly endpoint: Endpoint
  /** Requests in flight on it; an open tunnel counts for its whole life. */
  activeRequests = 0
  constructor (endpoint: Endpoint) {
    this.endpoint = endpoint
  }
}

/** Envoy's default circuit-breaker thresholds. */
const DEFAULT_LIMIT = 1024
const DEFAULT_RETRIES = 3

/** A cluster's circuit breakers; every `try*` that refuses counts its overflow stat. */
export class CircuitBreakers {
  #requests = 0
  #pending = 0
  #connections = 0
  #retries = 0
  readonly #overflow: (stat: string) => void

  constructor (overflow: (stat: string) => void) {
    this.#overflow = overflow
  }

  tryRequest (): boolean { return this.#take('#requests') }
  releaseRequest (): void { this.#requests-- }
  tryPendingRequest (): boolean { return this.#take('#pending') }
  releasePendingRequest (): void { this.#pending-- }
  tryConnection (): boolean { return this.#take('#connections') }
  releaseConnection (): void { this.#connections-- }
  tryRetry (): boolean { return this.#take('#retries') }
  releaseRetry (): void { this.#retries-- }

  #take (which: '#requests' | '#pending' | '#connections' | '#retries'): boolean {
    switch (which) {
      case '#requests': if (this.#requests >= DEFAULT_LIMIT) { this.#overflow('upstream_rq_pending_overflow'); return false } this.#requests++; return true
      case '#pending': if (this.#pending >= DEFAULT_LIMIT) { this.#overflow('upstream_rq_pending_overflow'); return false } this.#pending++; return true
      case '#connections': if (this.#connections >= DEFAULT_LIMIT) { this.#overflow('upstream_cx_overflow'); return false } this.#connections++; return true
      case '#retries': if (this.#retries >= DEFAULT_RETRIES) { this.#overflow('upstream_rq_retry_overflow'); return false } this.#retries++; return true
    }
  }
}

/** A named upstream: endpoints picked round robin (Envoy's default load balancer for these cases). */
export class Cluster {
  readonly name: string
  readonly hosts: readonly Host[]
  readonly protocol: 'http1' | 'http2'
  readonly tls: Record<string, unknown> | undefined
  readonly connectTimeout: number
  readonly breakers: CircuitBreakers
  #next = 0

  constructor (name: string, options: ClusterOptions, context?: { stats?: { cluster (cluster: string, name: string, by?: number): void }, log?: unknown }) {
    this.name = name
    this.hosts = options.endpoints.map(e => new Host(parseEndpoint(e)))
    this.protocol = options.protocol ?? 'http1'
    this.tls = options.tls as Record<string, unknown> | undefined
    this.connectTimeout = options.connectTimeout ?? 5000
    this.breakers = new CircuitBreakers((stat) => context?.stats?.cluster(name, stat))
  }

  /** Round robin over the hosts; undefined when there is none. */
  chooseHost (_context: { previous?: readonly Host[] } = {}): Host | undefined {
    if (this.hosts.length === 0) return undefined
    const host = this.hosts[this.#next % this.hosts.length]!
    this.#next = (this.#next + 1) % this.hosts.length
    return host
  }

  /** The outcome of one attempt on a host (outlier detection's input). */
  recordOutcome (_host: Host, _outcome: 'success' | '5xx' | 'gateway-failure' | 'local-origin-failure' | 'local-origin-success'): void {}

  ready (): Promise<void> { return Promise.resolve() }
  close (): void {}
}
