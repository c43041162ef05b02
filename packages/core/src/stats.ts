/** A counter only goes up; a gauge goes up and down (Envoy's stat kinds). */
export type StatKind = 'counter' | 'gauge'

/** One stat as data: Envoy's name, its kind, and the scope it belongs to (a cluster, an upgrade type). */
export interface StatRecord {
  readonly name: string
  readonly kind: StatKind
  /** `envoy_cluster_name` on Prometheus. */
  readonly cluster?: string
  /** The upgrade type of `upgrade.<type>.*` stats. */
  readonly upgradeType?: string
  value: number
}

/**
 * The gauges among Envoy's connection-manager and cluster stats; every other stat is a counter. Declared
 * here, once, rather than guessed from a name.
 */
const gauges = new Set([
  'downstream_cx_upgrades_active', 'downstream_cx_websocket_active', 'downstream_cx_active', 'downstream_rq_active',
  'upstream_cx_active', 'upstream_rq_active', 'upstream_rq_pending_active',
  'membership_total', 'membership_healthy', 'membership_degraded', 'membership_excluded',
  'outlier_detection.ejections_active'
])

/** Declares more gauge names (a companion's, or a module's own). */
export function declareGauges (names: Iterable<string>): void {
  for (const name of names) gauges.add(name)
}

/**
 * Counters and gauges, named as Envoy's connection manager and cluster manager name them, kept as
 * structured records. `snapshot()` flattens them to Envoy's dotted names (`cluster.<name>.<stat>`,
 * `upgrade.<type>.<stat>`); the Prometheus exposition reads the records, so any cluster name is exported
 * right.
 */
export class Stats {
  readonly #records = new Map<string, StatRecord>()

  /** Adds to a stat of the connection manager (negative `by` on a gauge going down). */
  inc (name: string, by = 1): void {
    this.#record(name, name, undefined, undefined).value += by
  }

  dec (name: string, by = 1): void {
    this.inc(name, -by)
  }

  /** Adds to a stat of one cluster. */
  cluster (cluster: string, name: string, by = 1): void {
    this.#record(`cluster.${cluster}.${name}`, name, cluster, undefined).value += by
  }

  /** Adds to a stat of one upgrade type. */
  upgrade (upgradeType: string, name: string, by = 1): void {
    this.#record(`upgrade.${upgradeType}.${name}`, name, undefined, upgradeType).value += by
  }

  /** The value of a stat by its dotted name (0 when never touched). */
  get (key: string): number {
    return this.#records.get(key)?.value ?? 0
  }

  /** A copy keyed by Envoy's dotted names, so a caller can diff two snapshots. */
  snapshot (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [key, record] of this.#records) out[key] = record.value
    return out
  }

  /** Every stat as a record (a copy). */
  records (): StatRecord[] {
    return [...this.#records.values()].map(r => ({ ...r }))
  }

  #record (key: string, name: string, cluster: string | undefined, upgradeType: string | undefined): StatRecord {
    let record = this.#records.get(key)
    if (record === undefined) {
      record = { name, kind: gauges.has(name) ? 'gauge' : 'counter', value: 0 }
      if (cluster !== undefined) record = { ...record, cluster }
      if (upgradeType !== undefined) record = { ...record, upgradeType }
      this.#records.set(key, record)
    }
    return record
  }
}
