import fp from 'fastify-plugin'
import { Agent } from 'undici'
import type { FastifyInstance, RouteOptions } from 'fastify'
import './fastify-augment.js'
import { checkPluginOptions, DEFAULT_STREAM_IDLE_TIMEOUT, type SwitchyardOptions } from './plugin-options.js'
import { Cluster } from './cluster/cluster.js'
import { Runtime } from './runtime.js'
import { Stats } from './stats.js'
import { AppState } from './app-state.js'
import { RouteRegistry } from './route-registry.js'
import { wrapHandler } from './route-handler.js'
import { UpgradeDispatch } from './upgrade-dispatch.js'
import { Http1UpgradeTransport } from './transport/http1-upgrade.js'
import { toPrometheus } from './prometheus.js'
import { ConnectionReaper } from './connection-reaper.js'
import { RequestGate } from './request-gate.js'
import { streamTimeoutsHook } from './stream-timeouts.js'
import { kSwitchyard } from './symbols.js'
import { proxy } from './proxy.js'
import { restoreBodyHeaders, streamBodyOf } from './raw-body.js'
import { literalAuthorityPath } from './connect-target.js'
import { countDrainRefusals } from './drain-refusals.js'
import type { Filter } from './filter/filter.js'
import { SwyDuplicateUpgradeTypeError, SwyPluginOptionsError, SwyShuttingDownError } from './errors.js'

async function switchyard (fastify: FastifyInstance, options: SwitchyardOptions): Promise<void> {
  const problem = checkPluginOptions(options ?? {})
  if (problem !== null) throw new SwyPluginOptionsError(problem.field, problem.reason)
  checkFilters(options.filters, 'filters')

  const upgradeConfigs: AppState['upgradeConfigs'] = new Map()
  for (const [i, cfg] of (options.upgradeConfigs ?? []).entries()) {
    const type = cfg.upgradeType.toLowerCase()
    if (upgradeConfigs.has(type)) throw new SwyDuplicateUpgradeTypeError(cfg.upgradeType, 'upgradeConfigs')
    checkFilters(cfg.filters, `upgradeConfigs[${i}].filters`)
    upgradeConfigs.set(type, { enabled: cfg.enabled !== false, filters: cfg.filters })
  }
  const stats = new Stats()
  const clusters = new Map<string, Cluster>()
  for (const [name, cfg] of Object.entries(options.clusters ?? {})) {
    try {
      clusters.set(name, new Cluster(name, cfg, { stats, log: fastify.log }))
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SWY_ERR_') === true) throw err
      throw new SwyPluginOptionsError(`clusters.${name}.endpoints`, (err as Error).message)
    }
  }
  // One undici agent per cluster for plain requests: the cluster's TLS options and, for `protocol: 'http2'`,
  // HTTP/2 (h2c prior knowledge in cleartext, ALPN h2 over TLS).
  // Its connections are the cluster's connection pool for plain requests: capped per endpoint at the
  // cluster's maxConnections (HTTP/1.1; a request over the cap waits for a free connection, as in Envoy's
  // pool) and counted in upstream_cx_total. upstream_cx_active stays the tunnels' (one connection each for
  // its whole life): an idle kept-alive connection is the agent's to close, on its own timer.
  const agents = new Map<string, Agent>()
  for (const cluster of clusters.values()) {
    const http2 = cluster.protocol === 'http2'
    const agent = new Agent({
      keepAliveTimeout: 4000,
      allowH2: http2,
      ...(http2 ? {} : { connections: cluster.breakers.limits.maxConnections }),
      connect: { ...cluster.tls, timeout: cluster.connectTimeout, ...(http2 ? { useH2c: true } : {}) }
    } as Agent.Options)
    agent.on('connect', () => stats.cluster(cluster.name, 'upstream_cx_total'))
    agents.set(cluster.name, agent)
  }

  const app = new AppState({
    log: fastify.log,
    clusters,
    upgradeConfigs,
    filters: options.filters ?? [],
    runtime: new Runtime(),
    stats,
    highWaterMark: options.highWaterMark ?? 64 * 1024,
    maxRequestHeaders: options.maxRequestHeaders ?? 100,
    streamIdleTimeout: options.streamIdleTimeout ?? DEFAULT_STREAM_IDLE_TIMEOUT,
    requestTimeout: options.requestTimeout ?? 0,
    agents
  })
  app.registerTransport('http1', new Http1UpgradeTransport(), '@switchyard/core')
  fastify.decorate(kSwitchyard as unknown as string, app)
  fastify.decorate('switchyard', {
    stats: () => stats.snapshot(),
    prometheus: () => toPrometheus(stats.records()),
    runtime: app.runtime,
    clusters: { get: (name: string) => clusters.get(name) }
  })

  // CONNECT is one more upgrade type (Envoy): routes declare it like any method, `app.route({ method: 'CONNECT' })`.
  if (!fastify.supportedMethods.includes('CONNECT')) fastify.addHttpMethod('CONNECT')
  const registry = new RouteRegistry(fastify, app)
  const armTimeouts = app.streamIdleTimeout > 0 || app.requestTimeout > 0 ? streamTimeoutsHook(app) : undefined
  fastify.addHook('onRoute', (routeOptions: RouteOptions) => {
    const { owner, state } = registry.add(routeOptions)
    // A CONNECT is routed on `/host:port`: the port's colon is literal, not a parameter.
    if (hasMethod(routeOptions.method, 'CONNECT')) routeOptions.url = literalAuthorityPath(routeOptions.url)
    // `proxy` streams the body itself, whatever its type: Fastify's parsers stay out of it on these routes.
    if (state?.upstream !== undefined && routeOptions.handler === proxy) streamBodyOf(routeOptions)
    // An @fastify/websocket route keeps its handler: that plugin reads it as the WebSocket handler.
    if (owner !== 'fastify-websocket') routeOptions.handler = wrapHandler(app, state, routeOptions.handler)
    // Last of the route's onRequest hooks, before Fastify reads a body: a proxied stream's timeouts start.
    if (armTimeouts !== undefined && state?.upstream !== undefined) {
      const hooks = routeOptions.onRequest
      routeOptions.onRequest = hooks === undefined ? [armTimeouts] : [...(Array.isArray(hooks) ? hooks : [hooks]), armTimeouts]
    }
  })
  fastify.addHook('preValidation', restoreBodyHeaders)

  const reaper = new ConnectionReaper(fastify.server)
  const dispatch = new UpgradeDispatch(fastify, app, registry, reaper)
  dispatch.attach(fastify.server)
  const gate = new RequestGate(app)
  gate.attach(fastify.server)
  app.routeUpgrade = (req, res, upgrade) => dispatch.routeUpgrade(req, res, upgrade)
  app.routeConnect = (req, socket, head) => dispatch.routeConnect(req, socket, head)

  fastify.addHook('onReady', async () => {
    registry.finalCheck()
    if (registry.errors.length > 0) throw registry.errors[0]
    dispatch.adoptForeign(fastify.server)
    gate.attach(fastify.server)
    await Promise.all([...clusters.values()].map(c => c.ready()))
  })
  let stopCountingDrain: (() => void) | undefined
  fastify.addHook('preClose', async () => {
    app.closing = true
    stopCountingDrain = countDrainRefusals(fastify.server, stats)
    const grace = options.shutdownGracePeriod ?? 0
    if (grace > 0) await app.streams.drained(grace)
    // New-style WebSocket tunnels get close frames (1001, going away) first; the rest are closed at once.
    for (const stream of [...app.streams]) {
      if (stream.goAway !== undefined) stream.goAway(new SwyShuttingDownError())
      else stream.destroy(new SwyShuttingDownError())
    }
    // Whatever the server still waits on after the grace period (a plain request in flight, a client that
    // never closes, an HTTP/2 session) is destroyed shortly after, so app.close() ends in bounded time.
    reaper.reapSoon()
    // Sockets report 'close' on a later tick: let the streams finish so gauges are back at zero.
    await app.streams.drained(1000)
  })
  fastify.addHook('onClose', async () => {
    stopCountingDrain?.()
    reaper.stop()
    dispatch.detach(fastify.server)
    gate.detach(fastify.server)
    for (const transport of app.transports()) transport.close?.()
    for (const cluster of clusters.values()) cluster.close()
    await Promise.all([...agents.values()].map(a => a.destroy()))
  })
}

function hasMethod (method: string | string[], name: string): boolean {
  return Array.isArray(method) ? method.includes(name) : method === name
}

function checkFilters (filters: Filter[] | undefined, field: string): void {
  for (const [i, f] of (filters ?? []).entries()) {
    for (const key of ['onRequestHeaders', 'onRequestData', 'onResponseHeaders', 'onResponseData', 'onClose'] as const) {
      if (f[key] !== undefined && typeof f[key] !== 'function') {
        throw new SwyPluginOptionsError(`${field}[${i}].${key}`, 'must be a function')
      }
    }
  }
}

export default fp(switchyard, { fastify: '5.x', name: '@switchyard/core' })
export { switchyard }
export { proxy } from './proxy.js'
export { prometheusHandler } from './prometheus.js'
export { FilterStatus } from './filter/filter.js'
export type { Filter, FilterContext, FilterResult, CloseReason } from './filter/filter.js'
export type { Headers } from './headers.js'
export type { SwitchyardOptions, UpgradeConfig, ClusterOptions } from './plugin-options.js'
export type { SwitchyardRouteOptions, UpstreamOptions, RouteUpgradeConfig, RedirectOptions, ConnectConfig } from './route-options.js'
export type { SwitchyardDecorator, SwitchyardCluster } from './fastify-augment.js'
export * as errors from './errors.js'
