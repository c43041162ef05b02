import type { ConnectConfig, RedirectOptions, RouteUpgradeConfig, UpstreamOptions } from './route-options.js'
import type { HashFunction } from './cluster/hash-policy.js'

/** A route as Switchyard sees it, captured in `onRoute` (Fastify does not keep custom route options for request time). */
export interface RouteState {
  url: string
  method: string | string[]
  upstream: UpstreamOptions | undefined
  upgradeConfigs: Map<string, boolean>
  useWebsocket: boolean
  redirect: RedirectOptions | undefined
  /** Envoy's `connect_config`: a CONNECT is terminated here rather than forwarded. */
  connectConfig: ConnectConfig | undefined
  /** Static prefix of the route path, replaced by `prefixRewrite`. */
  prefix: string
  rawUpgradeConfigs: RouteUpgradeConfig[] | undefined
  /** `upstream.hashPolicy`, compiled once. */
  hashOf: HashFunction | undefined
  /** The route's own `bodyLimit`: the most body bytes `proxy` streams (none without one, as Envoy). */
  bodyLimit: number | undefined
}
