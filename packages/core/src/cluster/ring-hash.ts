import type { Host } from './host.js'
import { random32, type LoadBalancer } from './load-balancer.js'
import { hash32 } from './hash.js'

export interface RingHashOptions {
  /** Hashes on the ring per unit of endpoint weight (default 1024, Envoy's minimum ring size). */
  minimumRingSize?: number
  /** Most hashes on the whole ring (default 8M, Envoy's). */
  maximumRingSize?: number
}

export const defaultMinimumRingSize = 1024
export const defaultMaximumRingSize = 8 * 1024 * 1024

// A ring entry packs (hash, host index) into one double so that the ring is one natively sorted
// Float64Array: hash × 2^21 + index stays below 2^53, exact.
const INDEX_BITS = 2 ** 21

/**
 * Envoy's ketama-style ring: every host is hashed onto a 32-bit ring at `address_0`, `address_1`, …;
 * a request hash goes to the first point at or after it, wrapping (binary search, O(log n)).
 *
 * One deliberate difference: Envoy spreads `minimumRingSize` over the whole ring, so every membership
 * change rescales every host's share of points and moves keys between hosts that did not change. Here
 * each unit of weight owns `minimumRingSize` points whatever the other hosts are (capped so the ring
 * stays within `maximumRingSize`), so removing an endpoint moves only the keys it held.
 */
export class RingHashLoadBalancer implements LoadBalancer {
  readonly #minimum: number
  readonly #maximum: number
  #hosts: readonly Host[] = []
  #ring = new Float64Array(0)
  // A host's points depend only on its address and count: kept across rebuilds (health flaps re-sort only).
  readonly #points = new WeakMap<Host, { count: number, points: Uint32Array }>()

  constructor (options: RingHashOptions = {}) {
    this.#minimum = options.minimumRingSize ?? defaultMinimumRingSize
    this.#maximum = options.maximumRingSize ?? defaultMaximumRingSize
  }

  get size (): number {
    return this.#ring.length
  }

  rebuild (hosts: readonly Host[]): void {
    this.#hosts = hosts
    if (hosts.length === 0) {
      this.#ring = new Float64Array(0)
      return
    }
    let weights = 0
    for (const host of hosts) weights += host.weight
    const perWeight = Math.max(1, Math.min(this.#minimum, Math.floor(this.#maximum / weights)))
    const ring = new Float64Array(weights * perWeight)
    let at = 0
    for (let i = 0; i < hosts.length; i++) {
      const points = this.#pointsOf(hosts[i]!, hosts[i]!.weight * perWeight)
      for (let j = 0; j < points.length; j++) ring[at++] = points[j]! * INDEX_BITS + i
    }
    ring.sort()
    this.#ring = ring
  }

  pick (hash: number | undefined, attempt: number): Host | undefined {
    const ring = this.#ring
    const n = ring.length
    if (n === 0) return undefined
    const target = (hash ?? random32()) * INDEX_BITS
    // First entry whose hash is >= the request's (ketama_get_server), wrapping to the start.
    let lo = 0
    let hi = n
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (ring[mid]! < target) lo = mid + 1
      else hi = mid
    }
    // A retry behaves as if the chosen point were not there (Envoy: the next point on the ring).
    const index = (lo + attempt) % n
    return this.#hosts[ring[index]! % INDEX_BITS]
  }

  #pointsOf (host: Host, count: number): Uint32Array {
    const cached = this.#points.get(host)
    if (cached !== undefined && cached.count === count) return cached.points
    const points = new Uint32Array(count)
    const key = host.endpoint.origin
    for (let i = 0; i < count; i++) points[i] = hash32(`${key}_${i}`)
    this.#points.set(host, { count, points })
    return points
  }
}
