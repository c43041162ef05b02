import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { proxy } from '@switchyard/core'
import { startProxy } from '../helpers/start-proxy.ts'
import { startFixture } from '../helpers/child.ts'

/**
 * The front the single-front stress suites load: the echo upstream in a child process
 * (`fixtures/upgrade-echo-server.ts`) and a new-style front in this process proxying every path to it.
 */
export async function startEchoFront (t: TestContext): Promise<{ app: FastifyInstance, port: number }> {
  const upstream = await startFixture(t, 'upgrade-echo-server.ts')
  return startProxy(t, {
    // 9,000 tunnels through one cluster: above Envoy's default circuit breakers (1,024).
    clusters: { up: { endpoints: [`127.0.0.1:${upstream.ready.port}`], circuitBreakers: { maxConnections: 100_000, maxRequests: 100_000 } } },
    upgradeConfigs: [{ upgradeType: 'websocket' }]
  }, (app) => { app.get('/*', { upstream: { cluster: 'up' } }, proxy) })
}
