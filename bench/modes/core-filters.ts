import type { AddressInfo } from 'node:net'
import { SCALE_BREAKERS, type Listen, type ListenOptions, type ProxyMode } from './mode.ts'

/**
 * Core with a deployable chain from @switchyard/filters in front of the router: header mutation and
 * authorization (headers only), the WebSocket frame limit and the access log (both watch every byte).
 */
export const mode: ProxyMode = {
  name: 'core-filters',
  description: 'core + header mutation, authorization, WebSocket frame limit, access log (websocket upgrades)',
  order: 11,
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
      filters.createAccessLogFilter({ logger: { info () {} } }),
      filters.createAuthorizationFilter({ verify: () => true }),
      filters.createHeaderMutationFilter({ request: { set: { 'x-bench': '1' } }, response: { set: { 'x-proxied-by': 'switchyard' } } }),
      filters.createWebSocketFrameLimitFilter({ maxMessageBytes: 1024 * 1024 })
    ]
  })
  app.get('/echo', { upstream: { cluster: 'echo' } }, proxy)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}
