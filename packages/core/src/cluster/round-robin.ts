import type { Host } from './host.js'
import { allWeightsEqual, type LoadBalancer } from './load-balancer.js'
import { EdfScheduler } from './edf-scheduler.js'

/**
 * Envoy's weighted round robin: equal weights cycle through the hosts (O(1)); unequal weights use an
 * EDF schedule, so a weight-3 host gets three picks in four, interleaved rather than in a burst.
 */
export class RoundRobinLoadBalancer implements LoadBalancer {
  #hosts: readonly Host[] = []
  #next = 0
  #edf: EdfScheduler<Host> | undefined

  rebuild (hosts: readonly Host[]): void {
    this.#hosts = hosts
    this.#edf = undefined
    if (hosts.length === 0) return
    // Keep the rotation where it was, so that a health change does not send the next picks to host 0.
    this.#next %= hosts.length
    if (!allWeightsEqual(hosts)) {
      const edf = new EdfScheduler<Host>()
      for (const host of hosts) edf.add(host, host.weight)
      this.#edf = edf
    }
  }

  pick (): Host | undefined {
    if (this.#edf !== undefined) return this.#edf.pickAndAdd(weightOf)
    const hosts = this.#hosts
    if (hosts.length === 0) return undefined
    const host = hosts[this.#next]!
    this.#next = (this.#next + 1) % hosts.length
    return host
  }
}

function weightOf (host: Host): number {
  return host.weight
}
