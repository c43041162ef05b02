/**
 * Counters and gauges, named as Envoy's connection manager and cluster manager name them.
 * Scoped stats use Envoy's dotted prefixes: `upgrade.<type>.…`, `cluster.<name>.…`.
 */
export class Stats {
  readonly #values = new Map<string, number>()

  inc (name: string, by = 1): void {
    this.#values.set(name, (this.#values.get(name) ?? 0) + by)
  }

  dec (name: string, by = 1): void {
    this.#values.set(name, (this.#values.get(name) ?? 0) - by)
  }

  get (name: string): number {
    return this.#values.get(name) ?? 0
  }

  /** A copy, so a caller can diff two snapshots. */
  snapshot (): Record<string, number> {
    return Object.fromEntries(this.#values)
  }

  cluster (cluster: string, name: string, by = 1): void {
    this.inc(`cluster.${cluster}.${name}`, by)
  }
}
