/**
 * The three ways a tunnel crosses Switchyard, built in front of one HTTP/1.1 upgrade upstream, so the
 * fault and load tests can run each case through each: new style (core's filter chain and HTTP/1.1
 * upstream), legacy (`useWebsocket`, @switchyard/websocket-tcp) and H1→H2→H1 (a front sending RFC 8441
 * extended CONNECT to a sidecar that turns it back into an HTTP/1.1 upgrade).
 */
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { proxy, type SwitchyardOptions } from '@switchyard/core'
import { startProxy } from './start-proxy.ts'
import { startLegacyProxy } from './legacy-net.ts'
import { startNode } from './h2-mesh.ts'

export const modes = ['new style', 'legacy', 'H1→H2→H1'] as const
export type Mode = typeof modes[number]

export interface Topology {
  /** The port clients connect to. */
  port: number
  /** Every Switchyard app on the path (the front first), to read their gauges. */
  apps: FastifyInstance[]
  /** H1→H2→H1 only: the sidecar's port (its pooled HTTP/2 connection outlives the tunnels). */
  h2Port?: number
}

export interface ModeOptions {
  /** Core options for every Switchyard app on the path (e.g. `shutdownGracePeriod`). */
  core?: Partial<SwitchyardOptions>
}

/** Builds `mode` in front of 127.0.0.1:`upstreamPort`; every upgrade path is proxied. */
export async function startMode (t: TestContext, mode: Mode, upstreamPort: number, options: ModeOptions = {}): Promise<Topology> {
  const endpoints = [`127.0.0.1:${upstreamPort}`]
  const core = options.core ?? {}
  if (mode === 'new style') {
    const { app, port } = await startProxy(t, { ...core, clusters: { up: { endpoints } }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
      app.get('/*', { upstream: { cluster: 'up' } }, proxy)
    })
    return { port, apps: [app] }
  }
  if (mode === 'legacy') {
    const { app, port } = await startLegacyProxy(t, { ...core, clusters: { up: { endpoints } } }, (app) => {
      app.get('/*', { useWebsocket: true, upstream: { cluster: 'up' } }, proxy)
    })
    return { port, apps: [app] }
  }
  const sidecar = await startNode(t, { listen: 'h2c', upstream: endpoints[0]!, upstreamProtocol: 'http1', core })
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${sidecar.port}`, upstreamProtocol: 'http2', core })
  return { port: front.port, apps: [front.app, sidecar.app], h2Port: sidecar.port }
}
