import fp from 'fastify-plugin'
import { Agent } from 'undici'
import type { FastifyInstance, RouteOptions } from 'fastify'
import './fastify-augment.js'
import { checkPluginOptions, type SwitchyardOptions } from './plugin-options.js'
import { Cluster } from './cluster.js'
import { Runtime } from './runtime.js'
import { Stats } from './stats.js'
import { RouteRegistry } from './route-registry.js'
import { wrapHandler } from './route-handler.js'
import { UpgradeDispatch } from './upgrade-dispatch.js'
import { Http1UpgradeTransport } from './transport/http1-upgrade.js'
import { createReplyFrom } from './reply-from-engine.js'
import { toPrometheus } from './prometheus.js'
import { ActiveStreams } from './active-streams.js'
import { kEngine, kSwitchyard } from './symbols.js'
import type { CoreHolder, SwitchyardCore } from './core.js'
import type { PlainEngine } from './plain-stream.js'
import type { Filter } from './filter/filter.js'
import { SwyDuplicateUpgradeTypeError, SwyPluginOptionsError, SwyShuttingDownError } from './errors.js'

async function switchyard (fastify: FastifyInstance, options: SwitchyardOptions): Promise<void> {
  const problem = checkPluginOptions(options ?? {})
  if (problem !== null) throw new SwyPluginOptionsError(problem.field, problem.reason)
  checkFilters(options.filters, 'filters')

  const upgradeConfigs: SwitchyardCore['upgradeConfigs'] = new Map()
  for (const [i, cfg] of (options.upgradeConfigs ?? []).entries()) {
    const type = cfg.upgradeType.toLowerCase()
    if (upgradeConfigs.has(type)) throw new SwyDuplicateUpgradeTypeError(cfg.upgradeType, 'upgradeConfigs')
    checkFilters(cfg.filters, `upgradeConfigs[${i}].filters`)
    upgradeConfigs.set(type, { enabled: cfg.enabled !== false, filters: cfg.filters })
  }
  const clusters = new Map<string, Cluster>()
  for (const [name, cfg] of Object.entries(options.clusters ?? {})) {
    try {
      clusters.set(name, new Cluster(name, cfg))
    } catch (err) {
      throw new SwyPluginOptionsError(`clusters.${name}.endpoints`, (err as Error).message)
    }
  }

  const core: SwitchyardCore = {
    log: fastify.log,
    clusters,
    upgradeConfigs,
    filters: options.filters ?? [],
    runtime: new Runtime(),
    stats: new Stats(),
    transports: new Map([['http1', new Http1UpgradeTransport()]]),
    highWaterMark: options.highWaterMark ?? 64 * 1024,
    maxRequestHeaders: options.maxRequestHeaders ?? 100,
    streams: new ActiveStreams(),
    legacyWebsocket: undefined,
    closing: false
  }
  // One plain-request engine per cluster: its own undici agent carries the cluster's TLS options and,
  // for `protocol: 'http2'`, HTTP/2 (h2c prior knowledge in cleartext, ALPN h2 over TLS).
  const engines = new Map<string, PlainEngine & { close (): void }>()
  for (const cluster of clusters.values()) {
    const http2 = cluster.protocol === 'http2'
    const agent = new Agent({
      keepAliveTimeout: 4000,
      allowH2: http2,
      connect: { ...cluster.tls, ...(http2 ? { useH2c: true } : {}) }
    } as Agent.Options)
    const engine = createReplyFrom(agent, fastify.log)
    engines.set(cluster.name, { from: engine.from, dispatcher: agent, close: engine.close })
  }
  const holder: CoreHolder = {
    core,
    [kEngine]: engines,
    routeUpgrade: (req, res, upgrade) => dispatch.routeUpgrade(req, res, upgrade)
  }
  fastify.decorate(kSwitchyard as unknown as string, holder)
  fastify.decorate('switchyard', {
    stats: () => core.stats.snapshot(),
    prometheus: () => toPrometheus(core.stats.snapshot()),
    runtime: core.runtime
  })

  const registry = new RouteRegistry(fastify, core)
  fastify.addHook('onRoute', (routeOptions: RouteOptions) => {
    const { owner, state } = registry.add(routeOptions)
    // An @fastify/websocket route keeps its handler: that plugin reads it as the WebSocket handler.
    if (owner !== 'fastify-websocket') routeOptions.handler = wrapHandler(core, state, routeOptions.handler)
  })

  const dispatch = new UpgradeDispatch(fastify, core, registry)
  dispatch.attach(fastify.server)

  fastify.addHook('onReady', async () => {
    registry.finalCheck()
    if (registry.errors.length > 0) throw registry.errors[0]
    dispatch.adoptForeign(fastify.server)
  })
  fastify.addHook('preClose', async () => {
    core.closing = true
    const grace = options.shutdownGracePeriod ?? 0
    if (grace > 0) await core.streams.drained(grace)
    for (const stream of [...core.streams]) stream.destroy(new SwyShuttingDownError())
    // Sockets report 'close' on a later tick: let the streams finish so gauges are back at zero.
    await core.streams.drained(1000)
  })
  fastify.addHook('onClose', async () => {
    dispatch.detach(fastify.server)
    for (const transport of core.transports.values()) transport.close?.()
    for (const engine of engines.values()) engine.close()
    await Promise.all([...engines.values()].map(e => (e.dispatcher as Agent).destroy()))
  })
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
export { prometheusHandler, toPrometheus } from './prometheus.js'
export { FilterStatus } from './filter/filter.js'
export type { Filter, FilterContext, FilterResult, CloseReason } from './filter/filter.js'
export type { Headers } from './headers.js'
export type { SwitchyardOptions, UpgradeConfig, ClusterOptions } from './plugin-options.js'
export type { SwitchyardRouteOptions, UpstreamOptions, RouteUpgradeConfig, RedirectOptions } from './route-options.js'
export type { SwitchyardDecorator } from './fastify-augment.js'
export * as errors from './errors.js'

// Companion-package API (@switchyard/websocket-tcp, @switchyard/h2-connect): one implementation of
// cluster choice, rewrites, the tunnel and the upgrade plumbing, shared rather than written again.
export { kSwitchyard } from './symbols.js'
export type { SwitchyardCore, CoreHolder, RouteState, UpgradeContext, LegacyWebsocketHandler } from './core.js'
export { chooseCluster, rewritePath, rewriteHost, clustersOf } from './route-action.js'
export { Cluster, parseEndpoint, type Endpoint } from './cluster.js'
export { Tunnel, streamSink, type TunnelSink, type TunnelOptions } from './tunnel.js'
export { Http1Downstream, closeSoon, type Downstream } from './downstream.js'
export type { UpgradeTransport, UpgradeRequest, UpgradeEvents, PendingUpgrade } from './transport/transport.js'
export { headersFromRaw, headerTokens, upgradeTypeOf, serializeHeaders, addForwardingHeaders, sanitizeUpgradeRequestHeaders, firstValue } from './headers.js'
export { resolveUpgrade } from './route-handler.js'
export { UpgradeStream } from './upgrade-stream.js'
export { Stats } from './stats.js'
export { compileCheck, type SchemaProblem } from './schema-check.js'
export { Runtime } from './runtime.js'
