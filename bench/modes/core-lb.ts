import type { AddressInfo } from 'node:net'
import { UnavailableError, type Listen, type ListenOptions, type ProxyMode } from './mode.ts'

/**
 * Core in front of a 100-endpoint cluster, one mode per load-balancing policy (Envoy's `lb_policy`), run
 * in the same run so their CPU per handshake compares: ring hash (the route hashes a generated cookie)
 * against round robin. Handshakes only. Skipped, with core's own message, while core's cluster schema
 * refuses `lbPolicy`; they run by themselves once it takes it.
 */
const ENDPOINTS = 100

function lbMode (name: string, order: number, lbPolicy: 'ringHash' | 'roundRobin'): ProxyMode {
  return {
    name,
    description: `core, one cluster of ${ENDPOINTS} endpoints, \`lbPolicy: '${lbPolicy}'\`${lbPolicy === 'ringHash' ? ' (route `hashPolicy: [{ cookie: { name: \'lb\', ttl: 0 } }]`: a session cookie generated per connection, so handshakes spread over the ring)' : ''}; handshakes only`,
    order,
    phases: ['handshakes'],
    start: async (host) => {
      const endpoints = (await host.upstreams(ENDPOINTS)).map((e) => `${e.host}:${e.port}`)
      return host.fork(import.meta.url, 'listen', { endpoints, lbPolicy })
    }
  }
}

export const modes: ProxyMode[] = [
  lbMode('core-lb-ring-hash', 13, 'ringHash'),
  lbMode('core-lb-round-robin', 14, 'roundRobin')
]

export const listen: Listen = async (options: ListenOptions) => {
  const { default: Fastify } = await import('fastify')
  const { default: switchyard, proxy } = await import('@switchyard/core')
  const lbPolicy = String(options.lbPolicy)
  const app = Fastify({ logger: false })
  try {
    // Through `unknown`: the options may name fields this core's types do not have yet.
    await app.register(switchyard, {
      clusters: { echo: { endpoints: options.endpoints as string[], lbPolicy } },
      upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'bench' }]
    } as unknown as Parameters<typeof switchyard>[1])
    // Every bench handshake carries the same Sec-WebSocket-Key: hashing it would send them all to one
    // endpoint. The generated cookie is derived from each connection's addresses, so they spread.
    const upstream = lbPolicy === 'ringHash' ? { cluster: 'echo', hashPolicy: [{ cookie: { name: 'lb', ttl: 0 } }] } : { cluster: 'echo' }
    app.get('/echo', { upstream } as Record<string, unknown>, proxy)
    await app.ready()
  } catch (err) {
    const message = (err as Error)?.message ?? String(err)
    await app.close().catch(() => {})
    if (/lbPolicy|hashPolicy/.test(message)) throw new UnavailableError(`core refuses lbPolicy '${lbPolicy}' (not built yet): ${message}`)
    throw err
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}
