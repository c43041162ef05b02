import type { AddressInfo } from 'node:net'
import { SCALE_BREAKERS, type Listen, type ListenOptions, type ProxyMode } from './mode.ts'

/**
 * Core with the two headers-only filters of @switchyard/filters: header mutation and authorization.
 * Neither has a data callback, so core writes the tunnel straight through, as with no filter: this
 * mode should cost what `core` does per message (issue 5: they "add nothing per data chunk").
 */
export const mode: ProxyMode = {
  name: 'core-headers-only',
  description: 'core + header mutation and authorization only (no data callbacks: the tunnel writes straight through)',
  order: 12,
  start: (host, upstream) => host.fork(import.meta.url, 'listen', { upstreamPort: upstream.port })
}

export const listen: Listen = async (options: ListenOptions) => {
  const { default: Fastify } = await import('fastify')
  const { default: switchyard, proxy } = await import('@switchyard/core')
  const filters = await import('@switchyard/filters')
  const app = Fastify({ logger: false })
  await app.register(switchyard, {
    clusters: { echo: { endpoints: [`127.0.0.1:${Number(options.upstreamPort)}`], circuitBreakers: SCALE_BREAKERS } },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'bench' }],
    filters: [
      filters.createAuthorizationFilter({ verify: () => true }),
      filters.createHeaderMutationFilter({ request: { set: { 'x-bench': '1' } }, response: { set: { 'x-proxied-by': 'switchyard' } } })
    ]
  })
  app.get('/echo', { upstream: { cluster: 'echo' } }, proxy)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}
