import type { Host } from './host.js'

/**
 * A load-balancing policy (Envoy's LoadBalancer). The cluster calls `rebuild` once per membership or
 * health change with the hosts to use (the healthy ones, or every host in panic) and every member;
 * `pick` runs per request and is O(1) or O(log n): rings and tables are only ever built in `rebuild`.
 */
export interface LoadBalancer {
  rebuild (hosts: readonly Host[], members?: readonly Host[]): void
  /**
   * `hash` is the route hash policy's value (an unsigned 32-bit integer), read by the hashing policies
   * only; `undefined` there means a random point. `attempt` > 0 asks for another host than attempt 0
   * gave, for a retry (Envoy's host selection retry); it is a hint, not a guarantee.
   */
  pick (hash: number | undefined, attempt: number): Host | undefined
}

export const lbPolicies = ['roundRobin', 'leastRequest', 'random', 'ringHash', 'maglev'] as const
export type LbPolicy = typeof lbPolicies[number]

/** A random unsigned 32-bit integer (Math.random: no cryptographic need on the request path). */
export function random32 (): number {
  return (Math.random() * 0x100000000) >>> 0
}

export function allWeightsEqual (hosts: readonly Host[]): boolean {
  for (let i = 1; i < hosts.length; i++) if (hosts[i]!.weight !== hosts[0]!.weight) return false
  return true
}
