import type { AddressInfo } from 'node:net'
import { SCALE_BREAKERS, type Listen, type ListenOptions, type ProxyMode } from './mode.ts'

/** Fastify + @switchyard/core, new-style upgrades with the default (empty) filter chain. */
export const mode: ProxyMode = {
  name: 'core',
  description: 'Fastify 5 + @switchyard/core, new-style upgrade (websocket and bench types), router only',
  order: 10,
  // A tunnel is two sockets in the front (downstream, upstream): the open-files limit caps the scale phase.
  scale: { fdsPerTunnel: 2 },
  start: (host, upstream) => host.fork(import.meta.url, 'listen', { upstreamPort: upstream.port })
}

export const listen: Listen = async (options: ListenOptions) => {
  // Imported here, in the forked process, so the orchestrator never loads the code under test.
  const { default: Fastify } = await import('fastify')
  const { default: switchyard, proxy } = await import('@switchyard/core')
  const app = Fastify({ logger: false })
  await app.register(switchyard, {
    clusters: { echo: { endpoints: [`127.0.0.1:${Number(options.upstreamPort)}`], circuitBreakers: SCALE_BREAKERS } },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'bench' }]
  })
  app.get('/echo', { upstream: { cluster: 'echo' } }, proxy)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}
