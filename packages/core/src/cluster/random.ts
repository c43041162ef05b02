import type { Host } from './host.js'
import { allWeightsEqual, type LoadBalancer } from './load-balancer.js'

/**
 * A random host. Envoy's random policy ignores endpoint weights; this one honours them (a weight is the
 * operator's stated share): O(1) when weights are equal, a binary search over cumulative weights otherwise.
 */
export class RandomLoadBalancer implements LoadBalancer {
  #hosts: readonly Host[] = []
  #cumulative: Float64Array | undefined

  rebuild (hosts: readonly Host[]): void {
    this.#hosts = hosts
    this.#cumulative = undefined
    if (hosts.length > 0 && !allWeightsEqual(hosts)) {
      const cumulative = new Float64Array(hosts.length)
      let sum = 0
      for (let i = 0; i < hosts.length; i++) cumulative[i] = sum += hosts[i]!.weight
      this.#cumulative = cumulative
    }
  }

  pick (): Host | undefined {
    const hosts = this.#hosts
    if (hosts.length === 0) return undefined
    const cumulative = this.#cumulative
    if (cumulative === undefined) return hosts[Math.floor(Math.random() * hosts.length)]
    const point = Math.random() * cumulative[cumulative.length - 1]!
    let lo = 0
    let hi = cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cumulative[mid]! > point) hi = mid
      else lo = mid + 1
    }
    return hosts[lo]
  }
}
