import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import switchyard, { proxy } from '@switchyard/core'

/**
 * The front proxy: Fastify with @switchyard/core, one cluster (`echo`) and WebSocket upgrades
 * enabled. `/echo` proxies plain GETs and tunnels WebSocket upgrades to the cluster.
 */
export async function buildFront (upstreamPort: number, options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(options)
  await app.register(switchyard, {
    clusters: { echo: { endpoints: [`127.0.0.1:${upstreamPort}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }]
  })
  app.get('/echo', { upstream: { cluster: 'echo' } }, proxy)
  app.get('/stats', async () => app.switchyard.stats())
  return app
}
