import type { Endpoint } from './endpoint.js'

/** What the router registers on a host: a tunnel or a proxied request it can end. */
export interface Closable {
  destroy (error?: Error): void
}

/** Active health-check state; `pending` until the first check of a host ends (Envoy's PENDING_ACTIVE_HC). */
export type ActiveHealth = 'pending' | 'healthy' | 'unhealthy'
export type HostHealth = ActiveHealth | 'ejected'

/**
 * One upstream address of a cluster (Envoy's Host). The router keeps the counters and the stream set
 * current; the cluster reads them (least request) and closes the streams when the host must let go.
 */
export class Host {
  readonly endpoint: Endpoint
  /** The address as `endpoints()` reports it: the configured spec, or `ip:port` for a `strictDns` answer. */
  readonly address: string
  weight: number
  /** Requests in flight on this host; an open tunnel counts for its whole life. */
  activeRequests = 0
  activeConnections = 0
  /** Live streams on this host, so that ejection, health failure and a drain timeout can close them. */
  readonly streams = new Set<Closable>()
  /** Active health checking (`healthy` when the cluster has none). */
  activeHealth: ActiveHealth
  /** Ejected by outlier detection. */
  ejected = false
  /** No longer in the cluster: takes no new traffic, its streams drain. */
  removed = false

  constructor (endpoint: Endpoint, address: string, weight: number, activeHealth: ActiveHealth) {
    this.endpoint = endpoint
    this.address = address
    this.weight = weight
    this.activeHealth = activeHealth
  }

  /** Usable when the cluster is not in panic. */
  get healthy (): boolean {
    return this.activeHealth === 'healthy' && !this.ejected
  }

  get health (): HostHealth {
    if (this.activeHealth === 'unhealthy') return 'unhealthy'
    return this.ejected ? 'ejected' : this.activeHealth
  }

  /** Destroys every registered stream (a copy: a stream's destroy usually deletes it from the set). */
  closeStreams (error: Error): number {
    const streams = [...this.streams]
    for (const stream of streams) stream.destroy(error)
    return streams.length
  }
}
