import type { AddressInfo } from 'node:net'
import type { Listen, ListenOptions, ProxyMode } from './mode.ts'

/**
 * What a Fastify user has today: Fastify 5 + `@fastify/http-proxy` with `websocket: true` (a frame-level
 * relay through `ws`: the client's WebSocket ends in the proxy and a second one is opened upstream).
 * The baseline the "≥ 3x less CPU per message, ≥ 2x the handshakes/s" targets compare with.
 */
export const mode: ProxyMode = {
  name: 'fastify-http-proxy',
  description: 'Fastify 5 + @fastify/http-proxy `websocket: true` (ws frame relay, a WebSocket each side); websocket only',
  order: 50,
  start: (host, upstream) => host.fork(import.meta.url, 'listen', { upstreamPort: upstream.port })
}

export const listen: Listen = async (options: ListenOptions) => {
  const { default: Fastify } = await import('fastify')
  const { default: httpProxy } = await import('@fastify/http-proxy')
  const app = Fastify({ logger: false })
  await app.register(httpProxy, { upstream: `http://127.0.0.1:${Number(options.upstreamPort)}`, websocket: true })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}
