import type { Host } from './host.js'
import { allWeightsEqual, type LoadBalancer } from './load-balancer.js'
import { EdfScheduler } from './edf-scheduler.js'

export interface LeastRequestOptions {
  /** Hosts sampled per pick (Envoy's `choice_count`, default 2: power of two choices). */
  choiceCount?: number
  /** Exponent of the active-request penalty when weights differ (Envoy's `active_request_bias`, default 1). */
  activeRequestBias?: number
}

/**
 * Envoy's weighted least request. Equal weights: sample `choiceCount` random hosts and take the one with
 * the fewest active requests (P2C; an open tunnel is an active request for its whole life, so long-lived
 * WebSockets spread by what is open, not by what was opened). Unequal weights: an EDF schedule where a
 * host's weight is `weight / (activeRequests + 1) ^ activeRequestBias`, read when it is re-added.
 */
export class LeastRequestLoadBalancer implements LoadBalancer {
  readonly #choiceCount: number
  readonly #bias: number
  #hosts: readonly Host[] = []
  #edf: EdfScheduler<Host> | undefined
  readonly #dynamicWeight: (host: Host) => number

  constructor (options: LeastRequestOptions = {}) {
    this.#choiceCount = options.choiceCount ?? 2
    this.#bias = options.activeRequestBias ?? 1
    const bias = this.#bias
    this.#dynamicWeight = bias === 1
      ? (host) => host.weight / (host.activeRequests + 1)
      : bias === 0
        ? (host) => host.weight
        : (host) => host.weight / Math.pow(host.activeRequests + 1, bias)
  }

  rebuild (hosts: readonly Host[]): void {
    this.#hosts = hosts
    this.#edf = undefined
    if (hosts.length > 0 && !allWeightsEqual(hosts)) {
      const edf = new EdfScheduler<Host>()
      for (const host of hosts) edf.add(host, this.#dynamicWeight(host))
      this.#edf = edf
    }
  }

  pick (): Host | undefined {
    if (this.#edf !== undefined) return this.#edf.pickAndAdd(this.#dynamicWeight)
    const hosts = this.#hosts
    const n = hosts.length
    if (n === 0) return undefined
    let best = hosts[Math.floor(Math.random() * n)]!
    for (let i = 1; i < this.#choiceCount; i++) {
      const candidate = hosts[Math.floor(Math.random() * n)]!
      if (candidate.activeRequests < best.activeRequests) best = candidate
    }
    return best
  }
}
