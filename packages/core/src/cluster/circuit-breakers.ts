import type { ClusterStats } from './cluster-stats.js'

export interface CircuitBreakerLimits {
  maxConnections: number
  maxPendingRequests: number
  maxRequests: number
  maxRetries: number
}

/** Envoy's default thresholds, in force even when a cluster sets no `circuitBreakers`. */
export const defaultCircuitBreakers: Readonly<CircuitBreakerLimits> = Object.freeze({
  maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3
})

type Resource = 'connections' | 'pendingRequests' | 'requests' | 'retries'

// Envoy's stat for each overflow, the gauge of what is open, and its `circuit_breakers.default.*_open` flag.
// The router keeps `upstream_rq_active` and `upstream_cx_active` itself (it counts a tunnel's connection
// whether or not it took a slot here); the pending gauge is only known here.
const resources = {
  connections: { limit: 'maxConnections', overflow: 'upstream_cx_overflow', active: undefined, open: 'circuit_breakers.default.cx_open' },
  pendingRequests: { limit: 'maxPendingRequests', overflow: 'upstream_rq_pending_overflow', active: 'upstream_rq_pending_active', open: 'circuit_breakers.default.rq_pending_open' },
  requests: { limit: 'maxRequests', overflow: 'upstream_rq_pending_overflow', active: undefined, open: 'circuit_breakers.default.rq_open' },
  retries: { limit: 'maxRetries', overflow: 'upstream_rq_retry_overflow', active: undefined, open: 'circuit_breakers.default.rq_retry_open' }
} as const

/**
 * A cluster's circuit breakers (Envoy's ResourceManager, one priority). Each `try*` takes a slot and
 * returns true, or returns false and counts the overflow; every true must be matched by its `release*`.
 * Nothing waits in a queue: past a limit the caller answers 503 with `x-envoy-overloaded: true`.
 * A tunnel holds its request and its connection for its whole life.
 */
export class CircuitBreakers {
  readonly limits: Readonly<CircuitBreakerLimits>
  readonly #stats: ClusterStats
  readonly #open: Record<Resource, number> = { connections: 0, pendingRequests: 0, requests: 0, retries: 0 }

  constructor (limits: Partial<CircuitBreakerLimits> | undefined, stats: ClusterStats) {
    this.limits = Object.freeze({ ...defaultCircuitBreakers, ...limits })
    this.#stats = stats
  }

  get connections (): number { return this.#open.connections }
  get pendingRequests (): number { return this.#open.pendingRequests }
  get requests (): number { return this.#open.requests }
  get retries (): number { return this.#open.retries }

  tryConnection (): boolean { return this.#try('connections') }
  releaseConnection (): void { this.#release('connections') }
  tryPendingRequest (): boolean { return this.#try('pendingRequests') }
  releasePendingRequest (): void { this.#release('pendingRequests') }
  tryRequest (): boolean { return this.#try('requests') }
  releaseRequest (): void { this.#release('requests') }
  tryRetry (): boolean { return this.#try('retries') }
  releaseRetry (): void { this.#release('retries') }

  #try (resource: Resource): boolean {
    const r = resources[resource]
    if (this.#open[resource] >= this.limits[r.limit]) {
      this.#stats.inc(r.overflow)
      return false
    }
    this.#set(resource, this.#open[resource] + 1)
    return true
  }

  #release (resource: Resource): void {
    // A release without a slot is the caller's bug; never let a gauge go negative for it.
    if (this.#open[resource] > 0) this.#set(resource, this.#open[resource] - 1)
  }

  #set (resource: Resource, value: number): void {
    const r = resources[resource]
    this.#open[resource] = value
    if (r.active !== undefined) this.#stats.gauge(r.active, value)
    this.#stats.gauge(r.open, value >= this.limits[r.limit] ? 1 : 0)
  }
}
