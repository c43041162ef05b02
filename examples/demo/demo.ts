import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { startEchoUpstream, type EchoUpstream } from './echo-upstream.ts'
import { buildFront } from './front.ts'

export interface DemoOptions {
  host?: string
  /** The front's port; when it is taken, a free one is used instead. 0 = any free port. */
  port?: number
  fastify?: FastifyServerOptions
}

export interface Demo {
  url: string
  /** True when the asked-for port was busy and another was taken. */
  portFallback: boolean
  front: FastifyInstance
  upstream: EchoUpstream
  close (): Promise<void>
}

/** Starts the quick-start topology on loopback: [client] → front (core) → WebSocket echo upstream. */
export async function startDemo ({ host = '127.0.0.1', port = 8080, fastify = {} }: DemoOptions = {}): Promise<Demo> {
  const upstream = await startEchoUpstream(host)
  let front: FastifyInstance | undefined
  try {
    front = await buildFront(upstream.port, fastify)
    const free = port === 0 || await isFree(host, port)
    await front.listen({ host, port: free ? port : 0 })
    const { port: bound } = front.server.address() as AddressInfo
    const app = front
    return {
      url: `http://${host}:${bound}`,
      portFallback: !free,
      front,
      upstream,
      async close () {
        await app.close()
        await upstream.close()
      }
    }
  } catch (err) {
    await front?.close()
    await upstream.close()
    throw err
  }
}

function isFree (host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)))
  })
}
