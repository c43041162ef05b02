import type { AddressInfo } from 'node:net'
import type { Listen, ListenOptions, ProxyMode } from './mode.ts'

/**
 * The mesh of the reference's "Handling H2 hops": a Switchyard front (HTTP/1.1 in, extended CONNECT out
 * over one pooled h2c connection) → a Switchyard sidecar (HTTP/2 in, HTTP/1.1 out) → the echo upstream.
 * CPU is both hops together (two measured processes).
 */
export const mode: ProxyMode = {
  name: 'h1-h2-h1',
  description: 'Switchyard front → h2c extended CONNECT → Switchyard sidecar (@switchyard/h2-connect), both hops measured together',
  order: 30,
  start: async (host, upstream) => {
    const sidecar = await host.fork(import.meta.url, 'listenSidecar', { upstreamPort: upstream.port })
    return host.fork(import.meta.url, 'listenFront', { sidecarPort: sidecar.port })
  }
}

const upgradeConfigs = [{ upgradeType: 'websocket' }, { upgradeType: 'bench' }]

/** HTTP/2 (h2c) in, HTTP/1.1 out. */
export const listenSidecar: Listen = async (options: ListenOptions) => {
  const { default: Fastify } = await import('fastify')
  const { default: switchyard, proxy } = await import('@switchyard/core')
  const { default: h2Connect } = await import('@switchyard/h2-connect')
  // Typed as an HTTP/1.1 instance: core's `proxy` handler is declared for the default server types.
  const app = Fastify({ logger: false, http2: true, forceCloseConnections: true }) as unknown as ReturnType<typeof Fastify>
  await app.register(switchyard, { clusters: { echo: { endpoints: [`127.0.0.1:${Number(options.upstreamPort)}`] } }, upgradeConfigs })
  await app.register(h2Connect)
  app.get('/echo', { upstream: { cluster: 'echo' } }, proxy)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}

/** HTTP/1.1 in, extended CONNECT out. */
export const listenFront: Listen = async (options: ListenOptions) => {
  const { default: Fastify } = await import('fastify')
  const { default: switchyard, proxy } = await import('@switchyard/core')
  const { default: h2Connect } = await import('@switchyard/h2-connect')
  const app = Fastify({ logger: false })
  await app.register(switchyard, {
    clusters: { sidecar: { endpoints: [`127.0.0.1:${Number(options.sidecarPort)}`], protocol: 'http2' } },
    upgradeConfigs
  })
  await app.register(h2Connect)
  app.get('/echo', { upstream: { cluster: 'sidecar' } }, proxy)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}
