import type { Host } from './host.js'
import { random32, type LoadBalancer } from './load-balancer.js'
import { hash32 } from './hash.js'
import { nthOther } from './ring-hash.js'

export interface MaglevOptions {
  /** A prime; default 65537 (Envoy's). */
  tableSize?: number
}

export const defaultMaglevTableSize = 65537

/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016; Envoy's weighted variant): each host walks its
 * own permutation of the table (offset and skip from two hashes of its address) and claims the next free
 * slot in turn, a host of weight w taking a turn w/max times as often. A pick is one table lookup, O(1).
 */
export class MaglevLoadBalancer implements LoadBalancer {
  readonly #size: number
  #hosts: Host[] = []
  #table = new Int32Array(0)

  constructor (options: MaglevOptions = {}) {
    this.#size = options.tableSize ?? defaultMaglevTableSize
  }

  rebuild (hosts: readonly Host[]): void {
    const m = this.#size
    // The fill order decides ties between hosts: sort by address so that the table does not depend on
    // the order hosts arrived in (two proxies with the same endpoints build the same table).
    const sorted = [...hosts].sort((a, b) => (a.endpoint.origin < b.endpoint.origin ? -1 : a.endpoint.origin > b.endpoint.origin ? 1 : 0))
    this.#hosts = sorted
    if (sorted.length === 0) {
      this.#table = new Int32Array(0)
      return
    }
    const n = sorted.length
    // Each host's next slot in its permutation (offset + skip × j) mod m, kept as a running position:
    // integer adds instead of a product that would leave int32 range.
    const position = new Int32Array(n)
    const skip = new Int32Array(n)
    const target = new Float64Array(n)
    let maxWeight = 0
    for (let i = 0; i < n; i++) {
      const key = sorted[i]!.endpoint.origin
      position[i] = hash32(key, 0) % m
      skip[i] = (hash32(key, 1) % (m - 1)) + 1
      maxWeight = Math.max(maxWeight, sorted[i]!.weight)
    }
    const table = new Int32Array(m).fill(-1)
    let filled = 0
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < n && filled < m; i++) {
        // A host of weight w takes a turn w/max as often as the heaviest (Envoy's weighted Maglev).
        if (iteration * sorted[i]!.weight < target[i]!) continue
        target[i] = target[i]! + maxWeight
        let c = position[i]!
        const step = skip[i]!
        while (table[c] !== -1) {
          c += step
          if (c >= m) c -= m
        }
        table[c] = i
        c += step
        position[i] = c >= m ? c - m : c
        filled++
      }
    }
    this.#table = table
  }

  pick (hash: number | undefined, attempt: number): Host | undefined {
    if (this.#hosts.length === 0) return undefined
    const slot = (hash ?? random32()) % this.#size
    if (attempt === 0) return this.#hosts[this.#table[slot]!]
    // A retry goes to another host than the attempts before (Envoy flips the hash's bits, which lands on
    // the same host again one time in N): the attempt-th other host in the table's next slots, whose
    // owners are spread at random, so the walk is a few slots long. Retries only.
    return this.#hosts[nthOther(this.#table, slot, attempt)]
  }
}
