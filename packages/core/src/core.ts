import type { FastifyBaseLogger } from 'fastify'
import type { Filter } from './filter/filter.js'
import type { Cluster } from './cluster.js'
import type { Runtime } from './runtime.js'
import type { Stats } from './stats.js'
import type { UpgradeTransport } from './transport/transport.js'
import type { UpstreamOptions, RouteUpgradeConfig, RedirectOptions } from './route-options.js'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Downstream } from './downstream.js'

/** A route as Switchyard sees it, captured in `onRoute`. */
export interface RouteState {
  url: string
  method: string | string[]
  upstream: UpstreamOptions | undefined
  upgradeConfigs: Map<string, boolean>
  useWebsocket: boolean
  redirect: RedirectOptions | undefined
  /** Static prefix of the route path, replaced by `prefixRewrite`. */
  prefix: string
  rawUpgradeConfigs: RouteUpgradeConfig[] | undefined
}

/** An upgrade handed to a route: what the upgrade listener (or h2-connect) captured. */
export interface UpgradeContext {
  downstream: Downstream
  upgradeType: string
}

/** The legacy `useWebsocket` mode, provided by @switchyard/websocket-tcp. */
export type LegacyWebsocketHandler = (request: FastifyRequest, reply: FastifyReply, route: RouteState, upgrade: UpgradeContext) => void

/** One registration of the plugin: Envoy's HTTP connection manager plus its cluster manager. */
export interface SwitchyardCore {
  readonly log: FastifyBaseLogger
  readonly clusters: Map<string, Cluster>
  readonly upgradeConfigs: Map<string, { enabled: boolean, filters: Filter[] | undefined }>
  readonly filters: Filter[]
  readonly runtime: Runtime
  readonly stats: Stats
  readonly transports: Map<string, UpgradeTransport>
  readonly highWaterMark: number
  /** Every live upgrade stream, closed by `app.close()`. */
  readonly streams: Set<{ destroy (error?: Error): void }>
  legacyWebsocket: LegacyWebsocketHandler | undefined
  closing: boolean
}
