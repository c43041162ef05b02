/** Values read at request time (Envoy's runtime): traffic shifting changes without a restart. */
export class Runtime {
  readonly #values = new Map<string, unknown>()

  get (key: string): unknown {
    return this.#values.get(key)
  }

  set (key: string, value: unknown): void {
    this.#values.set(key, value)
  }

  delete (key: string): void {
    this.#values.delete(key)
  }

  /** A numeric value in [0, 100], or `fallback` when unset or not a number. */
  percent (key: string, fallback: number): number {
    const v = Number(this.#values.get(key))
    if (!Number.isFinite(v)) return fallback
    return Math.min(100, Math.max(0, v))
  }
}
