import type { FastifyBaseLogger } from 'fastify'
import type { Filter } from './filter/filter.js'
import type { Cluster } from './cluster.js'
import type { Runtime } from './runtime.js'
import type { Stats } from './stats.js'
import type { UpgradeTransport } from './transport/transport.js'
import type { UpstreamOptions, RouteUpgradeConfig, RedirectOptions } from './route-options.js'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Downstream } from './downstream.js'
import type { ActiveStreams } from './active-streams.js'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { PlainEngine } from './plain-stream.js'
import type { kEngine } from './symbols.js'

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
  readonly maxRequestHeaders: number
  /** Every live upgrade stream, closed by `app.close()`. */
  readonly streams: ActiveStreams
  legacyWebsocket: LegacyWebsocketHandler | undefined
  closing: boolean
}

/** What `fastify[kSwitchyard]` holds: the core, and the entry points companion packages use. */
export interface CoreHolder {
  readonly core: SwitchyardCore
  /** The plain-request engine of each cluster, by name. */
  readonly [kEngine]: Map<string, PlainEngine>
  /**
   * Routes an upgrade that arrived another way (an HTTP/2 extended CONNECT, shaped as an HTTP/1.1
   * upgrade by @switchyard/h2-connect) through Fastify's router and hooks, like the upgrade listener does.
   */
  routeUpgrade (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, upgrade: UpgradeContext): void
}
