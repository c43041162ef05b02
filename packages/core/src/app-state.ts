import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Duplex } from 'node:stream'
import type { Agent } from 'undici'
import type { Filter } from './filter/filter.js'
import type { Cluster } from './cluster/cluster.js'
import type { Runtime } from './runtime.js'
import type { Stats } from './stats.js'
import type { UpgradeTransport } from './transport/transport.js'
import type { UpgradeContext } from './downstream.js'
import type { RouteState } from './route-state.js'
import { ActiveStreams } from './active-streams.js'
import { kSwitchyard } from './symbols.js'
import { SwyCompanionError } from './errors.js'

/** An upgrade mode a companion provides for routes that ask for it (`useWebsocket` → @switchyard/websocket-tcp). */
export type UpgradeModeHandler = (request: FastifyRequest, reply: FastifyReply, route: RouteState, upgrade: UpgradeContext) => void

/** The upgrade modes a route option can select. */
export type UpgradeModeName = 'useWebsocket'

export interface AppStateInit {
  log: FastifyBaseLogger
  clusters: Map<string, Cluster>
  upgradeConfigs: Map<string, { enabled: boolean, filters: Filter[] | undefined }>
  filters: Filter[]
  runtime: Runtime
  stats: Stats
  highWaterMark: number
  maxRequestHeaders: number
  /** Envoy's `stream_idle_timeout` and `request_timeout` (ms, 0 = off). */
  streamIdleTimeout: number
  requestTimeout: number
  agents: Map<string, Agent>
}

/**
 * The per-app state of one registration of `@switchyard/core` (Envoy's HTTP connection manager with its
 * cluster manager), and the registration API companion plugins use instead of writing into it.
 */
export class AppState {
  readonly log: FastifyBaseLogger
  readonly clusters: Map<string, Cluster>
  readonly upgradeConfigs: Map<string, { enabled: boolean, filters: Filter[] | undefined }>
  readonly filters: Filter[]
  readonly runtime: Runtime
  readonly stats: Stats
  readonly highWaterMark: number
  readonly maxRequestHeaders: number
  readonly streamIdleTimeout: number
  readonly requestTimeout: number
  /** Every live stream (upgrades, legacy connections), closed by `app.close()`. */
  readonly streams = new ActiveStreams()
  /** The undici agent of each cluster, for plain requests. */
  readonly agents: Map<string, Agent>
  /** True from the start of `app.close()`: new upgrades are refused with 503. */
  closing = false
  /**
   * Routes an upgrade that arrived another way (an HTTP/2 extended CONNECT, shaped as an HTTP/1.1 upgrade
   * by @switchyard/h2-connect) through Fastify's router and hooks, as the upgrade listener does.
   */
  routeUpgrade: (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, upgrade: UpgradeContext) => void = () => {
    throw new Error('@switchyard/core is not ready')
  }

  /** Routes an HTTP/1.1 CONNECT (the server's `'connect'` event) as core's own listener does. */
  routeConnect: (req: IncomingMessage, socket: Duplex, head: Buffer) => void = () => {
    throw new Error('@switchyard/core is not ready')
  }

  /**
   * `'connect'` listeners of companion plugins (h2-connect's, for HTTP/2 CONNECT): core still answers an
   * HTTP/1.1 CONNECT beside them. Any other `'connect'` listener is the application's, and answers it instead.
   */
  readonly companionConnectListeners = new WeakSet<object>()
  readonly #transports = new Map<string, { transport: UpgradeTransport, owner: string }>()
  readonly #modes = new Map<UpgradeModeName, { handler: UpgradeModeHandler, owner: string }>()

  constructor (init: AppStateInit) {
    this.log = init.log
    this.clusters = init.clusters
    this.upgradeConfigs = init.upgradeConfigs
    this.filters = init.filters
    this.runtime = init.runtime
    this.stats = init.stats
    this.highWaterMark = init.highWaterMark
    this.maxRequestHeaders = init.maxRequestHeaders
    this.streamIdleTimeout = init.streamIdleTimeout
    this.requestTimeout = init.requestTimeout
    this.agents = init.agents
  }

  /**
   * Registers the upstream transport of clusters with `protocol` (`'http2'`: @switchyard/h2-connect).
   * A second registration of one protocol is a clash (`SWY_ERR_COMPANION`), which fails the plugin's
   * registration and so `app.ready()`; use `decorateTransport` to wrap one instead.
   */
  registerTransport (protocol: string, transport: UpgradeTransport, owner: string): void {
    checkTransport(transport, owner, protocol)
    const existing = this.#transports.get(protocol)
    if (existing !== undefined) throw new SwyCompanionError(owner, `the transport of protocol "${protocol}" is already registered by ${existing.owner}`)
    this.#transports.set(protocol, { transport, owner })
  }

  /** Replaces the transport of `protocol` with a wrapper of it (e.g. a check on its answers). */
  decorateTransport (protocol: string, wrap: (inner: UpgradeTransport) => UpgradeTransport, owner: string): void {
    const existing = this.#transports.get(protocol)
    if (existing === undefined) throw new SwyCompanionError(owner, `no transport of protocol "${protocol}" to decorate`)
    const transport = wrap(existing.transport)
    checkTransport(transport, owner, protocol)
    this.#transports.set(protocol, { transport, owner: `${existing.owner} + ${owner}` })
  }

  transport (protocol: string): UpgradeTransport | undefined {
    return this.#transports.get(protocol)?.transport
  }

  transports (): UpgradeTransport[] {
    return [...this.#transports.values()].map(t => t.transport)
  }

  /** Registers the handler of an upgrade mode selected by a route option; once per mode. */
  registerUpgradeMode (name: UpgradeModeName, handler: UpgradeModeHandler, owner: string): void {
    if (typeof handler !== 'function') throw new SwyCompanionError(owner, `the handler of upgrade mode "${name}" must be a function`)
    const existing = this.#modes.get(name)
    if (existing !== undefined) throw new SwyCompanionError(owner, `upgrade mode "${name}" is already provided by ${existing.owner}`)
    this.#modes.set(name, { handler, owner })
  }

  upgradeMode (name: UpgradeModeName): UpgradeModeHandler | undefined {
    return this.#modes.get(name)?.handler
  }
}

function checkTransport (transport: UpgradeTransport, owner: string, protocol: string): void {
  if (transport === null || typeof transport !== 'object' || typeof transport.open !== 'function') {
    throw new SwyCompanionError(owner, `the transport of protocol "${protocol}" must have an open() method`)
  }
}

/** The state of the `@switchyard/core` registration visible from `fastify` (a companion's scope included), if any. */
export function appStateOf (fastify: FastifyInstance): AppState | undefined {
  return (fastify as unknown as Record<symbol, AppState | undefined>)[kSwitchyard]
}
