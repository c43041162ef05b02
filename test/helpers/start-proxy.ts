/**
 * Starts Fastify with @switchyard/core on 127.0.0.1 and tears it down with `t.after`; plus the stats and
 * diagnostics readers the new-style tests share.
 */
import diagnostics from 'node:diagnostics_channel'
import net from 'node:net'
import type { TestContext } from 'node:test'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import switchyard, { type SwitchyardOptions } from '@switchyard/core'

export interface Proxy {
  app: FastifyInstance
  port: number
  /** `http://127.0.0.1:<port>` */
  url: string
  /** `ws://127.0.0.1:<port>` */
  wsUrl: string
}

/**
 * Fastify with @switchyard/core registered first, then `routes(app)` (routes must come after the plugin),
 * listening on an ephemeral 127.0.0.1 port.
 */
export async function startProxy (
  t: TestContext,
  options: SwitchyardOptions,
  routes: (app: FastifyInstance) => void | Promise<void>,
  fastifyOptions: FastifyServerOptions = {}
): Promise<Proxy> {
  const app = Fastify(fastifyOptions)
  t.after(() => app.close())
  await app.register(switchyard, options)
  await routes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port
  return { app, port, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}` }
}

/** A cluster map entry for one local port. */
export function cluster (port: number): { endpoints: string[] } {
  return { endpoints: [`127.0.0.1:${port}`] }
}

/** Treats an absent counter as 0 (counters not yet incremented may be absent). */
export function stat (app: FastifyInstance, name: string): number {
  return app.switchyard.stats()[name] ?? 0
}

export interface TunnelCloseMessage {
  upgradeType: string
  bytesFromDownstream: number
  bytesFromUpstream: number
  error?: Error
}

/**
 * Resolves with the next `switchyard:tunnel:close` diagnostics message (published once the stream has
 * ended and its stats are final). Subscribe before the close happens.
 */
export function nextTunnelClose (): Promise<TunnelCloseMessage> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      diagnostics.unsubscribe('switchyard:tunnel:close', onMessage)
      resolve(message as TunnelCloseMessage)
    }
    diagnostics.subscribe('switchyard:tunnel:close', onMessage)
  })
}
