/**
 * Helpers for the legacy `useWebsocket` end-to-end tests (@switchyard/websocket-tcp): a proxy built from
 * core and the plugin, raw TCP upstreams and clients, and an endpoint that never completes a connect.
 * Everything listens on 127.0.0.1 and is torn down with `t.after`.
 */
import { spawn } from 'node:child_process'
import diagnostics from 'node:diagnostics_channel'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { TestContext } from 'node:test'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { Writable } from 'node:stream'
import switchyard, { type SwitchyardOptions } from '@switchyard/core'
import websocketTcp, { type WebsocketTcpOptions } from '@switchyard/websocket-tcp'

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

/** Listens on an ephemeral 127.0.0.1 port; `t.after` closes it and destroys its connections. */
export async function listen (t: TestContext, server: net.Server): Promise<number> {
  const sockets = new Set<net.Socket>()
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    for (const s of sockets) s.destroy()
    ;(server as http.Server).closeAllConnections?.()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as net.AddressInfo).port
}

/** A raw TCP upstream: `onConnection` gets each accepted socket (half-open allowed). */
export async function rawUpstream (t: TestContext, onConnection: (socket: net.Socket) => void): Promise<number> {
  return listen(t, net.createServer({ allowHalfOpen: true }, onConnection))
}

/** A port nothing listens on (bound, then released). */
export async function unusedPort (): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const { port } = s.address() as net.AddressInfo
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
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

/** A raw client connection, with every byte it receives gathered in `received`. */
export interface RawClient {
  socket: net.Socket
  /** All bytes so far, as latin1 text. */
  readonly received: string
  /** Resolves once `received` matches (a string to include, or a predicate); rejects if the socket closes first. */
  until (match: string | ((text: string) => boolean)): Promise<string>
  /** Resolves when the socket has closed (errors such as ECONNRESET are recorded in `error`). */
  closed: Promise<void>
  readonly error: (Error & { code?: string }) | undefined
  readonly ended: boolean
}

/** Connects to 127.0.0.1:port and writes `firstBytes`; `allowHalfOpen` keeps the write side open after the peer's FIN. */
export async function rawClient (t: TestContext, port: number, firstBytes?: string | Buffer, opts: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen === true })
  t.after(() => { socket.destroy() })
  let received = ''
  let error: (Error & { code?: string }) | undefined
  let ended = false
  const waiters = new Set<() => void>()
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1')
    for (const w of [...waiters]) w()
  })
  socket.on('end', () => { ended = true; for (const w of [...waiters]) w() })
  socket.on('error', (err) => { error = err })
  const closed = new Promise<void>((resolve) => socket.once('close', () => { for (const w of [...waiters]) w(); resolve() }))
  await once(socket, 'connect')
  if (firstBytes !== undefined) socket.write(firstBytes)
  return {
    socket,
    get received () { return received },
    get error () { return error },
    get ended () { return ended },
    closed,
    until (match) {
      const test = typeof match === 'string' ? (s: string) => s.includes(match) : match
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (test(received)) { waiters.delete(check); resolve(received); return }
          if (socket.destroyed || ended) {
            waiters.delete(check)
            reject(new Error(`connection ended before a match; received: ${JSON.stringify(received.slice(0, 300))}`))
          }
        }
        waiters.add(check)
        check()
      })
    }
  }
}

/** An RFC 6455 upgrade request head (a fixed, valid key). */
export function upgradeHead (path: string, extra: Record<string, string> = {}): string {
  const headers: Record<string, string> = {
    Host: 'front.example',
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    ...extra
  }
  return `GET ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
}

/** A raw upstream answer accepting an RFC 6455 upgrade (the accept value matches `upgradeHead`'s key). */
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
