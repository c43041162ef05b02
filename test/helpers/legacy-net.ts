/**
 * Helpers for the legacy `useWebsocket` end-to-end tests (@switchyard/websocket-tcp): a proxy built from
 * core and the plugin, raw TCP upstreams and clients, and an endpoint that never completes a connect.
 * Everything listens on 127.0.0.1 and is torn down with `t.after`.
 */
import { spawn } from 'node:child_process'
import diagnostics from 'node:diagnostics_channel'
import { once } from 'node:events'
import net from 'node:net'
import type { TestContext } from 'node:test'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { Writable } from 'node:stream'
import switchyard, { type SwitchyardOptions } from '@switchyard/core'
import websocketTcp, { type WebsocketTcpOptions } from '@switchyard/websocket-tcp'
import { listen } from './net.ts'

export interface LegacyProxy {
  app: FastifyInstance
  port: number
}

/**
 * Fastify with @switchyard/core and @switchyard/websocket-tcp registered (in that order), `routes`
 * declared after both, listening on 127.0.0.1.
 */
export async function startLegacyProxy (
  t: TestContext,
  core: SwitchyardOptions,
  routes: (app: FastifyInstance) => void | Promise<void>,
  plugin: WebsocketTcpOptions = {},
  fastifyOptions: FastifyServerOptions = {}
): Promise<LegacyProxy> {
  const app = Fastify(fastifyOptions)
  t.after(() => app.close())
  await app.register(switchyard, core)
  await app.register(websocketTcp, plugin)
  await routes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as net.AddressInfo).port }
}

/** A raw TCP upstream: `onConnection` gets each accepted socket (half-open allowed). */
export async function rawUpstream (t: TestContext, onConnection: (socket: net.Socket) => void): Promise<number> {
  return listen(t, net.createServer({ allowHalfOpen: true }, onConnection))
}

/**
 * An endpoint whose connects never complete: a child process listens with a backlog of 1 and blocks
 * its event loop, so it never accepts; two connections fill its accept queue and the kernel drops
 * every later SYN.
 */
export async function blackholePort (t: TestContext): Promise<number> {
  const child = spawn(process.execPath, ['-e', `
    const net = require('node:net'); const fs = require('node:fs')
    const s = net.createServer()
    s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      fs.writeSync(1, s.address().port + '\\n')
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
    })`], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => { child.kill() })
  const [data] = await once(child.stdout, 'data') as [Buffer]
  const port = Number(String(data).trim())
  for (let i = 0; i < 2; i++) {
    const filler = net.connect(port, '127.0.0.1')
    filler.on('error', () => {})
    t.after(() => { filler.destroy() })
    await once(filler, 'connect')
  }
  return port
}

/** A raw upstream answer accepting an RFC 6455 upgrade (the accept value matches `wsUpgradeHead`'s key). */
export const SWITCHING = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'

/** Reads a raw request head from an upstream socket; resolves with the head and the bytes after it. */
export function readHead (socket: net.Socket): Promise<{ head: string, rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.removeListener('data', onData)
      socket.removeListener('close', onClose)
      resolve({ head: buf.toString('latin1', 0, end + 4), rest: buf.subarray(end + 4) })
    }
    const onClose = (): void => reject(new Error('upstream connection closed before a request head'))
    socket.on('data', onData)
    socket.once('close', onClose)
  })
}

/**
 * Counts legacy tunnels that ended (`switchyard:tunnel:close` with `legacy: true`); `waitFor(n)` resolves
 * once n have, so a test can read the gauges after the proxy's side has closed, not only the client's.
 */
export function legacyCloses (t: TestContext): { waitFor (n: number): Promise<void>, readonly count: number } {
  let count = 0
  const waiters: Array<{ n: number, resolve: () => void }> = []
  const onMessage = (message: unknown): void => {
    if ((message as { legacy?: boolean }).legacy !== true) return
    count++
    for (const w of waiters.filter(w => count >= w.n)) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
  }
  diagnostics.subscribe('switchyard:tunnel:close', onMessage)
  t.after(() => { diagnostics.unsubscribe('switchyard:tunnel:close', onMessage) })
  return {
    get count () { return count },
    waitFor (n) {
      if (count >= n) return Promise.resolve()
      return new Promise((resolve) => { waiters.push({ n, resolve }) })
    }
  }
}

/** A Fastify logger that keeps every line, parsed: `logger.lines` holds them. */
export function captureLogs (): { logger: { level: string, stream: Writable }, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      cb()
    }
  })
  return { logger: { level: 'info', stream }, lines }
}
