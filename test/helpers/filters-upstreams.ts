/**
 * Helpers for the @switchyard/filters end-to-end tests: a proxy (core with the given filters), a `ws`
 * echo upstream that also answers plain requests, and a raw upstream for a non-WebSocket type.
 * Everything listens on 127.0.0.1 and is torn down with `t.after`.
 */
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { TestContext } from 'node:test'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import switchyard, { type SwitchyardOptions } from '@switchyard/core'
import WebSocket, { WebSocketServer } from 'ws'
import { listen } from './net.ts'

export interface FiltersProxy {
  app: FastifyInstance
  port: number
}

/** Fastify with @switchyard/core (`core` options), `routes` declared after it, listening on 127.0.0.1. */
export async function startFiltersProxy (
  t: TestContext, core: SwitchyardOptions, routes: (app: FastifyInstance) => void, fastify: FastifyServerOptions = {}
): Promise<FiltersProxy> {
  const app = Fastify(fastify)
  t.after(() => app.close())
  await app.register(switchyard, core)
  routes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as net.AddressInfo).port }
}

export interface EchoUpstream {
  port: number
  /** Every request head seen, plain and upgrade. */
  requests: http.IncomingMessage[]
  /** Close code and reason of each server-side WebSocket, as it closes. */
  closes: Array<{ code: number, reason: string }>
  /** Resolves with the next server-side close. */
  nextClose (): Promise<{ code: number, reason: string }>
}

/**
 * A `ws` echo server: a message `big:<n>` is answered with `n` bytes, anything else echoed. Plain
 * requests get JSON `{ method, url, headers, body }`.
 */
export async function echoUpstream (t: TestContext, opts: { perMessageDeflate?: boolean } = {}): Promise<EchoUpstream> {
  const requests: http.IncomingMessage[] = []
  const closes: Array<{ code: number, reason: string }> = []
  const waiters: Array<(c: { code: number, reason: string }) => void> = []
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: opts.perMessageDeflate ?? false, maxPayload: 1 << 24 })
  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => {})
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const text = isBinary ? '' : String(data)
      if (text.startsWith('big:')) ws.send(Buffer.alloc(Number(text.slice(4)), 0x62))
      else ws.send(data, { binary: isBinary })
    })
    ws.on('close', (code: number, reason: Buffer) => {
      const c = { code, reason: String(reason) }
      closes.push(c)
      waiters.shift()?.(c)
    })
  })
  const server = http.createServer((req, res) => {
    requests.push(req)
    const body: Buffer[] = []
    req.on('data', (c: Buffer) => body.push(c))
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(body).toString() }))
    })
  })
  server.on('upgrade', (req, socket, head) => {
    requests.push(req)
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  })
  t.after(() => { for (const c of wss.clients) c.terminate(); wss.close() })
  const port = await listen(t, server)
  return {
    port,
    requests,
    closes,
    nextClose: () => new Promise((resolve) => { waiters.push(resolve) })
  }
}

export interface RawTypeUpstream {
  port: number
  /** Bytes received after the request head, per connection. */
  received: Buffer[]
  /** Resolves when a connection has received `n` bytes after its head. */
  receivedBytes (n: number): Promise<Buffer>
}

/** Answers any upgrade with a 101 naming the requested type, then records what follows. */
export async function rawTypeUpstream (t: TestContext): Promise<RawTypeUpstream> {
  const received: Buffer[] = []
  const waiters: Array<{ n: number, resolve: (b: Buffer) => void }> = []
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    let index = -1
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      if (index < 0) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const type = /\r\nupgrade: *([^\r\n]*)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1]?.trim() ?? 'foo'
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\n\r\n`)
        buf = buf.subarray(end + 4)
        index = received.push(buf) - 1
      }
      received[index] = buf
      for (const w of [...waiters]) {
        if (buf.length >= w.n) { waiters.splice(waiters.indexOf(w), 1); w.resolve(buf) }
      }
    })
  })
  const port = await listen(t, server)
  return {
    port,
    received,
    receivedBytes: (n) => new Promise((resolve) => {
      const done = received.find((b) => b.length >= n)
      if (done !== undefined) resolve(done)
      else waiters.push({ n, resolve })
    })
  }
}

/** Opens a `ws` client; resolves `open`, or the status of a refused handshake (`unexpected-response`). */
export function openWs (url: string, options: WebSocket.ClientOptions = {}): Promise<{ ws: WebSocket, status: number, headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options })
    ws.on('error', () => {})
    ws.once('upgrade', (res) => {
      ws.once('open', () => resolve({ ws, status: 101, headers: res.headers }))
    })
    ws.once('unexpected-response', (_req, res) => {
      res.resume()
      resolve({ ws, status: res.statusCode ?? 0, headers: res.headers })
      ws.terminate()
    })
    ws.once('close', () => reject(new Error('closed before open')))
  })
}

/** Resolves with a `ws` client's close code and reason. */
export async function closeOf (ws: WebSocket): Promise<{ code: number, reason: string }> {
  const [code, reason] = await once(ws, 'close') as [number, Buffer]
  return { code, reason: String(reason) }
}
