import type { UpstreamOptions } from './route-options.js'
import type { Runtime } from './runtime.js'
import type { Endpoint } from './cluster/endpoint.js'
import type { Headers } from './headers.js'

/**
 * The cluster a request goes to (Envoy's route action): `runtimeFraction` sends `defaultPercent`
 * (or the runtime value) to `cluster` and the rest to `fallbackCluster`; `weightedClusters` splits by
 * weight; else `cluster`. Read at request time, so runtime changes apply to the next request.
 */
export function chooseCluster (upstream: UpstreamOptions, runtime: Runtime, random: () => number = Math.random): string | undefined {
  if (upstream.runtimeFraction !== undefined) {
    const { runtimeKey, defaultPercent, fallbackCluster } = upstream.runtimeFraction
    const percent = runtime.percent(runtimeKey, defaultPercent)
    const primary = upstream.cluster ?? upstream.weightedClusters?.[0]?.cluster
    return random() * 100 < percent && primary !== undefined ? primary : fallbackCluster
  }
  if (upstream.weightedClusters !== undefined) {
    const total = upstream.weightedClusters.reduce((sum, w) => sum + w.weight, 0)
    if (total === 0) return upstream.weightedClusters[0]!.cluster
    let pick = random() * total
    for (const w of upstream.weightedClusters) {
      pick -= w.weight
      if (pick < 0) return w.cluster
    }
    return upstream.weightedClusters[upstream.weightedClusters.length - 1]!.cluster
  }
  return upstream.cluster
}

/** Every cluster a route may send to, for configuration checks. */
export function clustersOf (upstream: UpstreamOptions): string[] {
  const names: string[] = []
  if (upstream.cluster !== undefined) names.push(upstream.cluster)
  for (const w of upstream.weightedClusters ?? []) names.push(w.cluster)
  if (upstream.runtimeFraction !== undefined) names.push(upstream.runtimeFraction.fallbackCluster)
  return names
}

/** The static prefix of a Fastify route path: what Envoy's route `prefix` match would be. */
export function routePrefix (routeUrl: string): string {
  const cut = routeUrl.search(/[*:(]/)
  return cut === -1 ? routeUrl : routeUrl.slice(0, cut)
}

/** Envoy `prefix_rewrite`: the matched prefix of the path replaced, the query kept. */
export function rewritePath (url: string, prefix: string, prefixRewrite: string | undefined): string {
  if (prefixRewrite === undefined || !url.startsWith(prefix)) return url
  const rest = url.slice(prefix.length)
  if (prefixRewrite.endsWith('/') && rest.startsWith('/')) return prefixRewrite + rest.slice(1)
  return prefixRewrite + rest
}

/** Envoy `host_rewrite_literal` / `auto_host_rewrite`: the Host the upstream sees. */
export function rewriteHost (headers: Headers, upstream: UpstreamOptions, endpoint: Endpoint): void {
  if (upstream.hostRewrite !== undefined) headers.host = upstream.hostRewrite
  else if (upstream.autoHostRewrite === true) headers.host = endpoint.authority
}
