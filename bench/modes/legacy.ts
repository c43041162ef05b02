import type { AddressInfo } from 'node:net'
import { SCALE_BREAKERS, type Listen, type ListenOptions, type ProxyMode } from './mode.ts'

/** Fastify + core + @switchyard/websocket-tcp: a `useWebsocket` route, the legacy raw TCP pipe. */
export const mode: ProxyMode = {
  name: 'legacy',
  description: 'Fastify 5 + @switchyard/websocket-tcp, useWebsocket route (raw pipe after the 101), websocket upgrades only',
  order: 20,
  start: (host, upstream) => host.fork(import.meta.url, 'listen', { upstreamPort: upstream.port })
}

export const listen: Listen = async (options: ListenOptions) => {
  const { default: Fastify } = await import('fastify')
  const { default: switchyard, proxy } = await import('@switchyard/core')
  const { default: websocketTcp } = await import('@switchyard/websocket-tcp')
  const app = Fastify({ logger: false })
  await app.register(switchyard, { clusters: { echo: { endpoints: [`127.0.0.1:${Number(options.upstreamPort)}`], circuitBreakers: SCALE_BREAKERS } } })
  await app.register(websocketTcp)
  app.get('/echo', { upstream: { cluster: 'echo' }, useWebsocket: true }, proxy)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}
