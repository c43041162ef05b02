import diagnostics from 'node:diagnostics_channel'
import type { AddressInfo, Socket } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import h2Connect from '@switchyard/h2-connect'
import websocketTcp from '@switchyard/websocket-tcp'
import { createAccessLogFilter, type AccessLogLine } from '@switchyard/filters'
import { meshAuthorization } from './auth.ts'
import type { MeshConfig } from './config.ts'
import { frontCounters, type Counters, type FrontState } from './counters.ts'
import { registerLiveView } from './live-view.ts'
import { createMeterFilter } from './meter-filter.ts'
import { appCluster, type AppEndpoint } from './app-cluster.ts'
import { registerAppControls } from './app-controls.ts'
import type { AppAction } from './app-instances.ts'
import { clusterCounters, watchClusters, type ClusterView } from './cluster-view.ts'
import { registerPage } from './page-routes.ts'
import { SHOUT } from './shout-service.ts'
import type { TotalsSource } from './stats-feed.ts'

export interface FrontOptions {
  config: MeshConfig
  sidecarPort: number
  /** The app's instances (the legacy route's cluster). */
  apps: AppEndpoint[]
  /** Kills or restarts an app instance (the page's buttons); false when there is none by that name. */
  control: (action: AppAction, name: string) => Promise<boolean>
  /** The mesh's totals the page shows (this process's or, with workers, the primary's). */
  totals: TotalsSource
  /** Called (often) when this front's counters may have moved. */
  onChange: () => void
  /** One line per closed stream, from the access-log filter. */
  accessLog: (line: string) => void
}

export interface Front {
  app: FastifyInstance
  port: number
  counters (): Counters
  /** Refuses new upgrades (503), lets open tunnels run `shutdownGracePeriod` ms, closes the rest. */
  close (): Promise<void>
}

/**
 * The front proxy: HTTP/1.1 in. New-style routes go over HTTP/2 to the sidecar (extended CONNECT);
 * the legacy route is a raw TCP pipe straight to the app, as Envoy's `use_websocket` was: it cannot
 * ride an HTTP/2 stream. The default chain (meter, access log, authorization) sees every new-style
 * upgrade and its bytes; the legacy route runs Fastify hooks only, no filter, so it checks the token in one.
 */
export async function startFront (options: FrontOptions): Promise<Front> {
  const { config, sidecarPort, apps, totals, onChange } = options
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
  const { filter: meterFilter, meter } = createMeterFilter(onChange)
  const state: FrontState = { meter, legacy: { up: 0, down: 0 }, refused: {}, draining: false }
  const refuse = (status: number): void => {
    state.refused[status] = (state.refused[status] ?? 0) + 1
    onChange()
  }
  const auth = meshAuthorization(config.token, refuse)

  await app.register(switchyard, {
    clusters: {
      sidecar: { endpoints: [`http://${config.host}:${sidecarPort}`], protocol: 'http2' },
      app: appCluster(apps, config.app.healthCheckInterval)
    },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'CONNECT' }],
    filters: [
      meterFilter,
      createAccessLogFilter({ logger: { info: (line) => options.accessLog(formatAccess(line as AccessLogLine)) } }),
      auth.filter
    ],
    shutdownGracePeriod: config.front.shutdownGracePeriod
  })
  await app.register(h2Connect)
  await app.register(websocketTcp)

  // New style, over the H2 hop: WebSocket enabled plugin-wide.
  app.get('/chat', { upstream: { cluster: 'sidecar' } }, proxy)
  app.get('/echo', { upstream: { cluster: 'sidecar' } }, proxy)
  app.get('/hello', { upstream: { cluster: 'sidecar' } }, proxy)
  // A non-WebSocket upgrade: this route enables `shout` and turns WebSocket off (Envoy's truth table).
  app.get('/shout', {
    upgradeConfigs: [{ upgradeType: SHOUT, enabled: true }, { upgradeType: 'websocket', enabled: false }],
    upstream: { cluster: 'sidecar' }
  }, proxy)
  // CONNECT, one more upgrade type: forwarded over the H2 hop as an HTTP/2 CONNECT; the sidecar
  // terminates it at the app side's TCP echo. The token is checked like any upgrade's.
  app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'sidecar' }, handler: proxy })
  // Old style: `/legacy/chat` → the app's `/chat`, bytes piped uninterpreted.
  app.get('/legacy/*', { onRequest: auth.onRequest, useWebsocket: true, upstream: { cluster: 'app', prefixRewrite: '/' } }, proxy)

  // Core refuses a type the route does not enable before any filter runs: its counter moves unseen.
  app.addHook('onResponse', async (request) => { if (request.headers.upgrade !== undefined) onChange() })
  // So are the drain's 503s, written before any hook: a connection that ends during the drain reports them.
  app.server.on('connection', (socket: Socket) => socket.once('close', () => { if (state.draining) onChange() }))

  await registerPage(app, config.token)
  registerLiveView(app, totals)
  registerAppControls(app, auth.onRequest, options.control)

  const onLegacyClose = (message: unknown): void => {
    const m = message as { legacy?: boolean, bytesFromDownstream: number, bytesFromUpstream: number }
    if (m.legacy !== true) return
    state.legacy.up += m.bytesFromDownstream
    state.legacy.down += m.bytesFromUpstream
    onChange()
  }
  const onLegacyStart = (message: unknown): void => { if ((message as { legacy?: boolean }).legacy === true) onChange() }
  try {
    await app.listen({ host: config.host, port: config.front.port })
  } catch (err) {
    await app.close()
    throw err
  }
  diagnostics.subscribe('switchyard:tunnel:close', onLegacyClose)
  diagnostics.subscribe('switchyard:upgrade:start', onLegacyStart)
  const labels = new Map(apps.map((a) => [a.address, a.name]))
  const views: ClusterView[] = [
    { view: 'front → sidecar', cluster: 'sidecar', labels: new Map([[`http://${config.host}:${sidecarPort}`, 'sidecar']]) },
    { view: 'front → app (legacy)', cluster: 'app', labels }
  ]
  watchClusters(app, views, onChange)
  return {
    app,
    port: (app.server.address() as AddressInfo).port,
    counters: () => ({ ...frontCounters(app, state), ...clusterCounters(app, views) }),
    async close () {
      state.draining = true
      onChange()
      try {
        await app.close()
      } finally {
        diagnostics.unsubscribe('switchyard:tunnel:close', onLegacyClose)
        diagnostics.unsubscribe('switchyard:upgrade:start', onLegacyStart)
      }
    }
  }
}

function formatAccess (l: AccessLogLine): string {
  return `access ${l.method} ${l.path} ${l.upgradeType ?? 'http'} ${l.status ?? '-'} ` +
    `up=${l.bytesFromDownstream} down=${l.bytesFromUpstream} ${Math.round(l.durationMs)}ms closedBy=${l.closedBy} reason=${l.reason}`
}
