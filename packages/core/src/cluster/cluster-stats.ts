import { declareGauges } from '../stats.js'

/** Where cluster stats go: core's `Stats` (`cluster.<name>.<stat>`); a negative `by` moves a gauge down. */
export interface ClusterStatsSink {
  cluster (cluster: string, name: string, by?: number): void
}

/** The cluster stats this module keeps that are gauges (Envoy's kinds); every other one is a counter. */
export const clusterGauges = [
  'membership_total',
  'membership_healthy',
  'membership_degraded',
  'membership_excluded',
  'outlier_detection.ejections_active',
  'upstream_rq_pending_active',
  'circuit_breakers.default.cx_open',
  'circuit_breakers.default.rq_pending_open',
  'circuit_breakers.default.rq_open',
  'circuit_breakers.default.rq_retry_open'
] as const
export type ClusterGauge = typeof clusterGauges[number]
declareGauges(clusterGauges)

/** One cluster's view of the sink: counters by name, gauges set to a value (sent as the difference). */
export class ClusterStats {
  readonly #sink: ClusterStatsSink
  readonly #cluster: string
  readonly #gauges = new Map<ClusterGauge, number>()

  constructor (sink: ClusterStatsSink, cluster: string) {
    this.#sink = sink
    this.#cluster = cluster
    // Gauges exist from the start, at 0, so a scrape sees them before anything happens.
    for (const name of clusterGauges) this.gauge(name, 0)
  }

  inc (name: string, by = 1): void {
    this.#sink.cluster(this.#cluster, name, by)
  }

  gauge (name: ClusterGauge, value: number): void {
    const last = this.#gauges.get(name)
    if (last === value) return
    this.#gauges.set(name, value)
    this.#sink.cluster(this.#cluster, name, value - (last ?? 0))
  }
}
