import FindMyWay from 'find-my-way'
import type { FastifyInstance, RouteOptions } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { checkRouteOptions, type SwitchyardRouteOptions } from './route-options.js'
import { clustersOf, routePrefix } from './route-action.js'
import { compileHashPolicy } from './cluster/hash-policy.js'
import type { AppState } from './app-state.js'
import type { RouteState } from './route-state.js'
import {
  SwyDuplicateUpgradeTypeError, SwyRouteOptionsError, SwyUnknownClusterError, SwyWebsocketTcpMissingError
} from './errors.js'

/** Who answers upgrades to a route. */
export type RouteOwner = 'switchyard' | 'fastify-websocket' | 'fastify'

interface Entry { owner: RouteOwner }

/**
 * Every route seen by `onRoute`, with Switchyard's view of it, and a mirror of Fastify's router so the
 * one upgrade listener can tell, before routing, whether an upgrade belongs to another plugin's route
 * (an `@fastify/websocket` route) and must be handed to that plugin's listener.
 */
export class RouteRegistry {
  readonly #mirror: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>
  /** Problems found while routes were added; `app.ready()` fails with the first. */
  readonly errors: Error[] = []
  readonly #legacyRoutes: string[] = []
  readonly #core: AppState

  constructor (fastify: FastifyInstance, core: AppState) {
    this.#core = core
    const config = fastify.initialConfig as Record<string, unknown> & { routerOptions?: Record<string, unknown> }
    const opts = config.routerOptions ?? config
    this.#mirror = FindMyWay({
      caseSensitive: opts.caseSensitive as boolean | undefined,
      ignoreTrailingSlash: opts.ignoreTrailingSlash as boolean | undefined,
      ignoreDuplicateSlashes: opts.ignoreDuplicateSlashes as boolean | undefined,
      maxParamLength: opts.maxParamLength as number | undefined,
      allowUnsafeRegex: true
    })
  }

  /** Reads and checks a route's Switchyard options: who owns its upgrades, and its state when it has options. */
  add (routeOptions: RouteOptions & SwitchyardRouteOptions & { websocket?: boolean, wsHandler?: unknown }): { owner: RouteOwner, state: RouteState | undefined } {
    const owner = this.#ownerOf(routeOptions)
    return { owner, state: owner === 'switchyard' ? this.#state(routeOptions) : undefined }
  }

  #ownerOf (routeOptions: RouteOptions & SwitchyardRouteOptions & { websocket?: boolean, wsHandler?: unknown }): RouteOwner {
    const owner: RouteOwner = pick(routeOptions) !== undefined
      ? 'switchyard'
      : routeOptions.websocket === true || routeOptions.wsHandler !== undefined ? 'fastify-websocket' : 'fastify'
    this.#mirrorRoute(routeOptions, owner)
    return owner
  }

  #state (routeOptions: RouteOptions & SwitchyardRouteOptions): RouteState | undefined {
    const where = `${Array.isArray(routeOptions.method) ? routeOptions.method.join(',') : routeOptions.method} ${routeOptions.url}`
    const own = pick(routeOptions)!

    const problem = checkRouteOptions(own)
    if (problem !== null) {
      this.errors.push(new SwyRouteOptionsError(where, problem.field, problem.reason))
      return undefined
    }
    const upgradeConfigs = new Map<string, boolean>()
    for (const cfg of own.upgradeConfigs ?? []) {
      const type = cfg.upgradeType.toLowerCase()
      if (upgradeConfigs.has(type)) this.errors.push(new SwyDuplicateUpgradeTypeError(cfg.upgradeType, `route ${where}`))
      upgradeConfigs.set(type, cfg.enabled !== false)
    }
    if (own.upstream !== undefined) {
      for (const name of clustersOf(own.upstream)) {
        if (!this.#core.clusters.has(name)) this.errors.push(new SwyUnknownClusterError(where, name, 'upstream'))
      }
      if (own.upstream.mirror !== undefined && !this.#core.clusters.has(own.upstream.mirror.cluster)) {
        this.errors.push(new SwyUnknownClusterError(where, own.upstream.mirror.cluster, 'upstream.mirror'))
      }
      if (own.upstream.cluster === undefined && own.upstream.weightedClusters === undefined) {
        this.errors.push(new SwyRouteOptionsError(where, 'upstream', 'needs cluster or weightedClusters'))
      }
      // Ring hash and maglev without a hash policy pick at random: logged once per cluster, not refused.
      if (own.upstream.hashPolicy === undefined) {
        for (const name of clustersOf(own.upstream)) this.#core.clusters.get(name)?.warnMissingHashPolicy(where)
      }
    }
    if (own.connectConfig !== undefined && own.upstream === undefined) {
      this.errors.push(new SwyRouteOptionsError(where, 'connectConfig', 'needs an upstream to connect to'))
    }
    if (own.useWebsocket === true) this.#legacyRoutes.push(where)
    return {
      url: routeOptions.url,
      method: routeOptions.method,
      upstream: own.upstream,
      upgradeConfigs,
      useWebsocket: own.useWebsocket === true,
      redirect: own.redirect,
      connectConfig: own.connectConfig,
      prefix: routePrefix(routeOptions.url),
      rawUpgradeConfigs: own.upgradeConfigs,
      hashOf: own.upstream?.hashPolicy === undefined ? undefined : compileHashPolicy(own.upstream.hashPolicy),
      bodyLimit: routeOptions.bodyLimit
    }
  }

  /** Checks that need every plugin registered (run at `onReady`). */
  finalCheck (): void {
    if (this.#legacyRoutes.length > 0 && this.#core.upgradeMode('useWebsocket') === undefined) {
      this.errors.push(new SwyWebsocketTcpMissingError(this.#legacyRoutes[0]!))
    }
  }

  ownerOf (req: IncomingMessage): RouteOwner | undefined {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const constraints: Record<string, string> = {}
    if (typeof req.headers.host === 'string') constraints.host = req.headers.host
    if (typeof req.headers['accept-version'] === 'string') constraints.version = req.headers['accept-version']
    try {
      const found = this.#mirror.find(req.method as FindMyWay.HTTPMethod, path, constraints)
      return (found?.store as Entry | undefined)?.owner
    } catch {
      return undefined
    }
  }

  #mirrorRoute (routeOptions: RouteOptions, owner: RouteOwner): void {
    const methods = Array.isArray(routeOptions.method) ? routeOptions.method : [routeOptions.method]
    for (const method of methods) {
      try {
        this.#mirror.on(method as FindMyWay.HTTPMethod, routeOptions.url, { constraints: routeOptions.constraints ?? {} }, noop, { owner } satisfies Entry)
      } catch {
        // A constraint strategy of the app's own, or a duplicate (Fastify reports those itself).
      }
    }
  }
}

function pick (o: SwitchyardRouteOptions): SwitchyardRouteOptions | undefined {
  if (o.upstream === undefined && o.upgradeConfigs === undefined && o.useWebsocket === undefined && o.redirect === undefined && o.connectConfig === undefined) return undefined
  const out: SwitchyardRouteOptions = {}
  if (o.connectConfig !== undefined) out.connectConfig = o.connectConfig
  if (o.upstream !== undefined) out.upstream = o.upstream
  if (o.upgradeConfigs !== undefined) out.upgradeConfigs = o.upgradeConfigs
  if (o.useWebsocket !== undefined) out.useWebsocket = o.useWebsocket
  if (o.redirect !== undefined) out.redirect = o.redirect
  return out
}

function noop (): void {}
