import type { Host } from './host.js'
import type { ClusterStats } from './cluster-stats.js'

export interface OutlierDetectionConfig {
  consecutive5xx: number
  /** Undefined: gateway failures are not a reason to eject (Envoy enforces them at 0 % by default). */
  consecutiveGatewayFailure: number | undefined
  consecutiveLocalOriginFailure: number
  interval: number
  baseEjectionTime: number
  maxEjectionPercent: number
}

export const outlierDetectionDefaults = Object.freeze({
  consecutive5xx: 5, consecutiveLocalOriginFailure: 5, interval: 10000, baseEjectionTime: 30000, maxEjectionPercent: 10
})

/** What one attempt on a host came to, as the router saw it. */
export type Outcome = 'success' | '5xx' | 'gateway-failure' | 'local-origin-failure' | 'local-origin-success'
export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure'

export interface OutlierEvents {
  /** `host.ejected` is already set: the cluster rebuilds and, if told to, closes the host's streams. */
  onEject (host: Host, reason: EjectionReason, duration: number): void
  onUneject (host: Host): void
}

interface Monitor {
  consecutive5xx: number
  consecutiveGateway: number
  consecutiveLocal: number
  /** Envoy's ejection time backoff: +1 per ejection, −1 per sweep that finds the host in service. */
  multiplier: number
  ejectedAt: number
  duration: number
}

/**
 * Envoy's outlier detector (the consecutive-error kinds), fed by real traffic through `record`. An
 * ejection lasts `baseEjectionTime × times ejected` and ends at the first sweep (every `interval`) after
 * that; never more than `maxEjectionPercent` of the hosts are ejected at once, but one always may be.
 */
export class OutlierDetector {
  readonly #config: OutlierDetectionConfig
  readonly #stats: ClusterStats
  readonly #events: OutlierEvents
  readonly #monitors = new Map<Host, Monitor>()
  readonly #timer: NodeJS.Timeout
  #ejected = 0

  constructor (config: OutlierDetectionConfig, stats: ClusterStats, events: OutlierEvents) {
    this.#config = config
    this.#stats = stats
    this.#events = events
    this.#timer = setInterval(() => this.#sweep(), config.interval)
    this.#timer.unref()
  }

  add (host: Host): void {
    if (!this.#monitors.has(host)) {
      this.#monitors.set(host, { consecutive5xx: 0, consecutiveGateway: 0, consecutiveLocal: 0, multiplier: 0, ejectedAt: 0, duration: 0 })
    }
  }

  remove (host: Host): void {
    if (!this.#monitors.delete(host)) return
    if (host.ejected) this.#setEjected(this.#ejected - 1)
  }

  /** How long the host's current (or last) ejection lasts, in ms; 0 if it was never ejected. */
  ejectionDuration (host: Host): number {
    return this.#monitors.get(host)?.duration ?? 0
  }

  record (host: Host, outcome: Outcome): void {
    const m = this.#monitors.get(host)
    if (m === undefined) return
    const c = this.#config
    switch (outcome) {
      case 'success':
        m.consecutive5xx = 0
        m.consecutiveGateway = 0
        m.consecutiveLocal = 0
        return
      case 'local-origin-success':
        m.consecutiveLocal = 0
        return
      case '5xx':
        // A 5xx that is not a gateway failure breaks a run of gateway failures (Envoy).
        m.consecutiveGateway = 0
        if (++m.consecutive5xx >= c.consecutive5xx) this.#detect(host, m, 'consecutive_5xx')
        return
      case 'gateway-failure':
        if (c.consecutiveGatewayFailure !== undefined && ++m.consecutiveGateway >= c.consecutiveGatewayFailure) {
          this.#detect(host, m, 'consecutive_gateway_failure')
        }
        if (++m.consecutive5xx >= c.consecutive5xx) this.#detect(host, m, 'consecutive_5xx')
        return
      case 'local-origin-failure':
        // A connect failure or a reset: a local-origin failure, and a gateway failure when those are watched.
        if (c.consecutiveGatewayFailure !== undefined && ++m.consecutiveGateway >= c.consecutiveGatewayFailure) {
          this.#detect(host, m, 'consecutive_gateway_failure')
        }
        if (++m.consecutiveLocal >= c.consecutiveLocalOriginFailure) this.#detect(host, m, 'consecutive_local_origin_failure')
    }
  }

  close (): void {
    clearInterval(this.#timer)
  }

  #detect (host: Host, m: Monitor, reason: EjectionReason): void {
    if (host.ejected || host.removed) return
    // The counter that fired starts again, so a bout of errors is counted once.
    if (reason === 'consecutive_5xx') m.consecutive5xx = 0
    else if (reason === 'consecutive_gateway_failure') m.consecutiveGateway = 0
    else m.consecutiveLocal = 0
    const allowed = Math.max(1, Math.floor(this.#monitors.size * this.#config.maxEjectionPercent / 100))
    if (this.#ejected >= allowed) {
      this.#stats.inc('outlier_detection.ejections_overflow')
      return
    }
    m.multiplier++
    m.ejectedAt = performance.now()
    m.duration = this.#config.baseEjectionTime * m.multiplier
    host.ejected = true
    this.#setEjected(this.#ejected + 1)
    this.#stats.inc('outlier_detection.ejections_enforced_total')
    this.#stats.inc(`outlier_detection.ejections_enforced_${reason}`)
    this.#events.onEject(host, reason, m.duration)
  }

  #sweep (): void {
    const now = performance.now()
    for (const [host, m] of this.#monitors) {
      if (!host.ejected) {
        if (m.multiplier > 0) m.multiplier--
        continue
      }
      if (now - m.ejectedAt < m.duration) continue
      m.consecutive5xx = 0
      m.consecutiveGateway = 0
      host.ejected = false
      this.#setEjected(this.#ejected - 1)
      this.#events.onUneject(host)
    }
  }

  #setEjected (count: number): void {
    this.#ejected = count
    this.#stats.gauge('outlier_detection.ejections_active', count)
  }
}
