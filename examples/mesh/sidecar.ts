import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import h2Connect from '@switchyard/h2-connect'
import { appCluster, type AppEndpoint } from './app-cluster.ts'
import { clusterCounters, watchClusters, type ClusterView } from './cluster-view.ts'
import { sidecarCounters, type Counters } from './counters.ts'
import { createMeterFilter } from './meter-filter.ts'
import { SHOUT } from './shout-service.ts'

export interface Sidecar {
  app: FastifyInstance
  port: number
  counters (): Counters
}

/**
 * The app's sidecar: HTTP/2 in (h2c; extended CONNECT turned back into an HTTP/1.1 upgrade by
 * @switchyard/h2-connect), HTTP/1.1 out to the app's instances, health-checked. Every path goes to the app;
 * a plain CONNECT goes to the app side's TCP echo.
 */
export async function startSidecar (host: string, port: number, apps: AppEndpoint[], healthCheckInterval: number, onChange: () => void, extra: { echoPort?: number } = {}): Promise<Sidecar> {
  // Before Node 24, close() otherwise waits for the front to close its HTTP/2 connection.
  const app = Fastify({ http2: true, forceCloseConnections: true }) as unknown as FastifyInstance
  const { filter, meter } = createMeterFilter(onChange)
  await app.register(switchyard, {
    clusters: {
      app: appCluster(apps, healthCheckInterval),
      ...(extra.echoPort === undefined ? {} : { echo: { endpoints: [`${host}:${extra.echoPort}`] } })
    },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: SHOUT }, { upgradeType: 'CONNECT' }],
    filters: [filter]
  })
  await app.register(h2Connect)
  app.route({ method: ['GET', 'POST'], url: '/*', upstream: { cluster: 'app' }, handler: proxy })
  // An HTTP/2 CONNECT from the front is terminated here: TCP to the echo, whatever authority it names.
  if (extra.echoPort !== undefined) app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'echo' }, connectConfig: {}, handler: proxy })
  try {
    await app.listen({ host, port })
  } catch (err) {
    await app.close()
    throw err
  }
  const views: ClusterView[] = [{ view: 'sidecar → app', cluster: 'app', labels: new Map(apps.map((a) => [a.address, a.name])) }]
  watchClusters(app, views, onChange)
  return {
    app,
    port: (app.server.address() as AddressInfo).port,
    counters: () => ({ ...sidecarCounters(app, meter), ...clusterCounters(app, views) })
  }
}
