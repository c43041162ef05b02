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
  // The ring of every member (sorted once per membership change), and the usable part of it, filtered
  // from it in one linear pass per health change: a flapping host never costs a sort. A ring is two
  // parallel arrays: the points' hashes, ascending, and the member index owning each.
  #members: Host[] = []
  #weights: number[] = []
  #fullHashes = new Uint32Array(0)
  #fullOwners = new Uint32Array(0)
  #hashes = new Uint32Array(0)
  #owners = new Uint32Array(0)
  // A host's points depend only on its address and count: kept across rebuilds.
  readonly #points = new WeakMap<Host, { count: number, points: Uint32Array }>()

  constructor (options: RingHashOptions = {}) {
    this.#minimum = options.minimumRingSize ?? defaultMinimumRingSize
    this.#maximum = options.maximumRingSize ?? defaultMaximumRingSize
  }

  get size (): number {
    return this.#hashes.length
  }

  rebuild (hosts: readonly Host[], members: readonly Host[] = hosts): void {
    if (!this.#sameMembers(members)) this.#buildFull(members)
    if (hosts.length === this.#members.length) {
      this.#hashes = this.#fullHashes
      this.#owners = this.#fullOwners
      return
    }
    const usable = new Uint8Array(this.#members.length)
    const index = new Map(this.#members.map((h, i) => [h, i]))
    for (const host of hosts) {
      const i = index.get(host)
      if (i !== undefined) usable[i] = 1
    }
    const fullOwners = this.#fullOwners
    let count = 0
    for (let i = 0; i < fullOwners.length; i++) count += usable[fullOwners[i]!]!
    const hashes = new Uint32Array(count)
    const owners = new Uint32Array(count)
    let at = 0
    for (let i = 0; i < fullOwners.length; i++) {
      if (usable[fullOwners[i]!] === 1) {
        hashes[at] = this.#fullHashes[i]!
        owners[at++] = fullOwners[i]!
      }
    }
    this.#hashes = hashes
    this.#owners = owners
  }

  pick (hash: number | undefined, attempt: number): Host | undefined {
    const hashes = this.#hashes
    const n = hashes.length
    if (n === 0) return undefined
    const target = hash ?? random32()
    // First point whose hash is >= the request's (ketama_get_server), wrapping to the start.
    let lo = 0
    let hi = n
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (hashes[mid]! < target) lo = mid + 1
      else hi = mid
    }
    const owners = this.#owners
    if (attempt === 0) return this.#members[owners[lo % n]!]
    // A retry behaves as if the hosts picked before were not on the ring (Envoy's stated intent; its
    // `i + attempt` lands on the same host again whenever neighbouring points share it, which with 1,024
    // points per host is most of the time): walk on to the attempt-th other host. Retries only.
    return this.#members[nthOther(owners, lo, attempt)]
  }

  #sameMembers (members: readonly Host[]): boolean {
    if (members.length !== this.#members.length) return false
    for (let i = 0; i < members.length; i++) {
      if (members[i] !== this.#members[i] || members[i]!.weight !== this.#weights[i]) return false
    }
    return true
  }

  #buildFull (members: readonly Host[]): void {
    this.#members = [...members]
    this.#weights = members.map(h => h.weight)
    let weights = 0
    for (const host of members) weights += host.weight
    const perWeight = Math.max(1, Math.min(this.#minimum, Math.floor(this.#maximum / Math.max(1, weights))))
    const hashes = new Uint32Array(weights * perWeight)
    const owners = new Uint32Array(hashes.length)
    let at = 0
    for (let i = 0; i < members.length; i++) {
      const points = this.#pointsOf(members[i]!, members[i]!.weight * perWeight)
      hashes.set(points, at)
      owners.fill(i, at, at + points.length)
      at += points.length
    }
    sortPairs(hashes, owners)
    this.#fullHashes = hashes
    this.#fullOwners = owners
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

/**
 * The owner `attempt` distinct owners on from `start` (its own first), walking the slots forward and
 * wrapping; the last one found when the slots hold fewer. At most one pass over the slots.
 */
export function nthOther (owners: Uint32Array | Int32Array, start: number, attempt: number): number {
  const n = owners.length
  const seen = [owners[start % n]!]
  for (let step = 1; step < n && seen.length <= attempt; step++) {
    const owner = owners[(start + step) % n]!
    if (!seen.includes(owner)) seen.push(owner)
  }
  return seen[Math.min(attempt, seen.length - 1)]!
}

/** Sorts `keys` ascending, moving `values` along: a stable LSD radix sort, two passes of 16 bits, O(n). */
function sortPairs (keys: Uint32Array, values: Uint32Array): void {
  const n = keys.length
  const k2 = new Uint32Array(n)
  const v2 = new Uint32Array(n)
  const count = new Uint32Array(65537)
  for (let i = 0; i < n; i++) count[(keys[i]! & 0xffff) + 1]++
  for (let b = 1; b <= 65536; b++) count[b] = count[b]! + count[b - 1]!
  for (let i = 0; i < n; i++) {
    const d = count[keys[i]! & 0xffff]++
    k2[d] = keys[i]!
    v2[d] = values[i]!
  }
  count.fill(0)
  for (let i = 0; i < n; i++) count[(k2[i]! >>> 16) + 1]++
  for (let b = 1; b <= 65536; b++) count[b] = count[b]! + count[b - 1]!
  for (let i = 0; i < n; i++) {
    const d = count[k2[i]! >>> 16]++
    keys[d] = k2[i]!
    values[d] = v2[i]!
  }
}
