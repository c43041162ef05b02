import type { Http2Server } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { SCALE_BREAKERS, type Listen, type ListenOptions, type ProxyMode } from './mode.ts'

/**
 * The mesh of the reference's "Handling H2 hops": a Switchyard front (HTTP/1.1 in, extended CONNECT out
 * over one pooled h2c connection) → a Switchyard sidecar (HTTP/2 in, HTTP/1.1 out) → the echo upstream.
 * CPU is both hops together (two measured processes).
 */
export const mode: ProxyMode = {
  name: 'h1-h2-h1',
  description: 'Switchyard front → h2c extended CONNECT → Switchyard sidecar (@switchyard/h2-connect), both hops measured together',
  order: 30,
  // A tunnel is one downstream socket in the front and one upstream socket in the sidecar: 10,000 fit.
  scale: { fdsPerTunnel: 1 },
  start: async (host, upstream) => {
    const sidecar = await host.fork(import.meta.url, 'listenSidecar', { upstreamPort: upstream.port })
    return host.fork(import.meta.url, 'listenFront', { sidecarPort: sidecar.port })
  }
}

const upgradeConfigs = [{ upgradeType: 'websocket' }, { upgradeType: 'bench' }]
/** Streams the sidecar allows on one connection, where h2-connect has the option: every scale step on one connection. */
const MAX_STREAMS = 20_000

/** HTTP/2 (h2c) in, HTTP/1.1 out. Reports the HTTP/2 connections open (`sessions`). */
export const listenSidecar: Listen = async (options: ListenOptions) => {
  const { default: Fastify } = await import('fastify')
  const { default: switchyard, proxy } = await import('@switchyard/core')
  const { default: h2Connect } = await import('@switchyard/h2-connect')
  const h2Options = await acceptsMaxConcurrentStreams() ? { maxConcurrentStreams: MAX_STREAMS } : {}
  // Typed as an HTTP/1.1 instance: core's `proxy` handler is declared for the default server types.
  const app = Fastify({ logger: false, http2: true, forceCloseConnections: true }) as unknown as ReturnType<typeof Fastify>
  await app.register(switchyard, { clusters: { echo: { endpoints: [`127.0.0.1:${Number(options.upstreamPort)}`], circuitBreakers: SCALE_BREAKERS } }, upgradeConfigs })
  await app.register(h2Connect, h2Options)
  app.get('/echo', { upstream: { cluster: 'echo' } }, proxy)
  let sessions = 0
  ;(app.server as unknown as Http2Server).on('session', (session) => {
    sessions++
    session.once('close', () => { sessions-- })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close(), info: () => ({ sessions }) }
}

/** Whether this h2-connect takes a listener `maxConcurrentStreams` (its default may hold 1,000 tunnels to several connections). */
async function acceptsMaxConcurrentStreams (): Promise<boolean> {
  const { default: Fastify } = await import('fastify')
  const { default: switchyard } = await import('@switchyard/core')
  const { default: h2Connect } = await import('@switchyard/h2-connect')
  const probe = Fastify({ logger: false, http2: true })
  try {
    await probe.register(switchyard, {})
    await probe.register(h2Connect, { maxConcurrentStreams: MAX_STREAMS } as Record<string, unknown>)
    await probe.ready()
    return true
  } catch {
    return false
  } finally {
    await probe.close().catch(() => {})
  }
}

/** HTTP/1.1 in, extended CONNECT out. */
export const listenFront: Listen = async (options: ListenOptions) => {
  const { default: Fastify } = await import('fastify')
  const { default: switchyard, proxy } = await import('@switchyard/core')
  const { default: h2Connect } = await import('@switchyard/h2-connect')
  const app = Fastify({ logger: false })
  await app.register(switchyard, {
    clusters: { sidecar: { endpoints: [`127.0.0.1:${Number(options.sidecarPort)}`], protocol: 'http2', circuitBreakers: SCALE_BREAKERS } },
    upgradeConfigs
  })
  await app.register(h2Connect)
  app.get('/echo', { upstream: { cluster: 'sidecar' } }, proxy)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() }
}
