/**
 * Helpers for the HTTP/2 hop end-to-end tests (@switchyard/h2-connect): an HTTP/1.1 echo app, a front
 * (HTTP/1.1 in, HTTP/2 out) and a sidecar (HTTP/2 in, HTTP/1.1 or HTTP/2 out) built from core and the
 * plugin, and clients (ws, raw HTTP/1.1, Node's http2). Everything listens on 127.0.0.1 and is torn
 * down with `t.after`.
 */
import diagnostics from 'node:diagnostics_channel'
import { once } from 'node:events'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import type { TestContext } from 'node:test'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { WebSocket, WebSocketServer } from 'ws'
import switchyard, { proxy, type SwitchyardOptions } from '@switchyard/core'
import h2Connect, { type H2ConnectOptions } from '@switchyard/h2-connect'
import { listen } from './net.ts'

/** What the echo app saw of one upgrade request. */
export interface SeenRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  socket: net.Socket
}

export interface EchoApp {
  port: number
  seen: SeenRequest[]
  /** Resolves with the next upgrade request the app receives. */
  next (): Promise<SeenRequest>
}

/**
 * An HTTP/1.1 app behind the mesh. Upgrades by path: `/ws…` a `ws` echo server; `/raw…` a 101 naming the
 * requested type, then raw echo (`bye` and FIN when the client half-closes); `/created` a 201 with body
 * `made`; `/bad-accept` a 101 with a wrong Sec-WebSocket-Accept. Plain requests get JSON of what arrived.
 */
export async function startEchoApp (t: TestContext): Promise<EchoApp> {
  const seen: SeenRequest[] = []
  const waiting: Array<(r: SeenRequest) => void> = []
  const wss = new WebSocketServer({ noServer: true })
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })))
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ method: req.method, url: req.url, httpVersion: req.httpVersion, headers: req.headers }))
  })
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on('error', () => {})
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, socket }
    seen.push(entry)
    waiting.shift()?.(entry)
    const path = entry.url
    if (path.startsWith('/ws')) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
    } else if (path.startsWith('/raw')) {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: upgrade\r\n\r\n`)
      if (head.length > 0) socket.write(head)
      socket.on('data', (d) => socket.write(d))
      socket.on('end', () => socket.end('bye'))
    } else if (path.startsWith('/created')) {
      socket.end('HTTP/1.1 201 Created\r\ncontent-length: 4\r\nx-app: yes\r\nconnection: close\r\n\r\nmade')
    } else if (path.startsWith('/bad-accept')) {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: d3Jvbmc=\r\n\r\n')
    } else {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n')
    }
  })
  // A CONNECT forwarded to the app is recorded and refused: the app is no proxy.
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
    socket.on('error', () => {})
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, socket }
    seen.push(entry)
    waiting.shift()?.(entry)
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n')
  })
  const port = await listen(t, server)
  return {
    port,
    seen,
    next: () => new Promise((resolve) => waiting.push(resolve))
  }
}

export interface MeshNode {
  app: FastifyInstance
  port: number
  origin: string
}

export interface NodeOptions {
  /** Where the catch-all route sends upgrades and plain requests. */
  upstream: string
  upstreamProtocol: 'http1' | 'http2'
  /** The server's own protocol: HTTP/1.1, h2c (prior knowledge), or TLS with ALPN h2 + HTTP/1.1. */
  listen: 'http1' | 'h2c' | 'tls'
  tls?: { key: string, cert: string }
  /** TLS options for an `https://` upstream. */
  upstreamTls?: Record<string, unknown>
  plugin?: H2ConnectOptions
  /** Register @switchyard/h2-connect (default true). */
  withPlugin?: boolean
  core?: Partial<SwitchyardOptions>
  fastify?: FastifyServerOptions
  routes?: (app: FastifyInstance) => void
}

/**
 * A Switchyard node: Fastify + core + h2-connect, one catch-all route (`GET`, `POST`) to the `mesh`
 * cluster, `websocket` and `foo` upgrades enabled.
 */
export async function startNode (t: TestContext, options: NodeOptions): Promise<MeshNode> {
  // Fastify closes live HTTP/2 sessions on `close()` only with forceCloseConnections (Node < 24).
  const serverOptions: Record<string, unknown> = { forceCloseConnections: true, ...options.fastify }
  if (options.listen === 'h2c') serverOptions.http2 = true
  if (options.listen === 'tls') {
    serverOptions.http2 = true
    serverOptions.https = { ...options.tls, allowHTTP1: true }
  }
  const app = Fastify(serverOptions as FastifyServerOptions) as unknown as FastifyInstance
  t.after(() => app.close())
  await app.register(switchyard, {
    clusters: {
      mesh: { endpoints: [options.upstream], protocol: options.upstreamProtocol, ...(options.upstreamTls !== undefined ? { tls: options.upstreamTls } : {}) }
    },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo' }],
    ...options.core
  })
  if (options.withPlugin !== false) await app.register(h2Connect, options.plugin ?? {})
  options.routes?.(app)
  app.route({ method: ['GET', 'POST'], url: '/*', upstream: { cluster: 'mesh' }, handler: proxy })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as net.AddressInfo).port
  const scheme = options.listen === 'tls' ? 'https' : 'http'
  return { app, port, origin: `${scheme}://127.0.0.1:${port}` }
}

/** Opens a `ws` client and waits for the handshake. */
export async function openWs (t: TestContext, url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, options)
  t.after(() => ws.terminate())
  await once(ws, 'open')
  return ws
}

/** Sends `text` and resolves with the next message. */
export async function echo (ws: WebSocket, text: string): Promise<string> {
  const reply = once(ws, 'message')
  ws.send(text)
  const [data] = await reply
  return String(data)
}

/** An HTTP/2 client session that has the peer's SETTINGS; `t.after` destroys it. */
export async function h2Session (t: TestContext, origin: string, options: http2.SecureClientSessionOptions = {}): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(origin, options)
  session.on('error', () => {})
  t.after(() => session.destroy())
  await once(session, 'remoteSettings')
  return session
}

/** Opens an extended CONNECT stream and resolves with its response headers. */
export async function extendedConnect (
  session: http2.ClientHttp2Session, path: string, protocol: string, headers: http2.OutgoingHttpHeaders = {}
): Promise<{ stream: http2.ClientHttp2Stream, headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader }> {
  const stream = session.request({ ':method': 'CONNECT', ':protocol': protocol, ':path': path, ':scheme': 'http', ':authority': 'mesh.test', ...headers })
  stream.on('error', () => {})
  const [res] = await once(stream, 'response') as [http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader]
  return { stream, headers: res }
}

/** Reads a raw HTTP/1.1 response head (and what came with it) from a socket, leaving it paused. */
export async function readHead (socket: net.Socket): Promise<{ status: number, head: string, rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.pause()
      socket.removeListener('data', onData)
      socket.removeListener('end', onEnd)
      const head = buf.subarray(0, end).toString('latin1')
      resolve({ status: Number(head.split(' ')[1]), head, rest: buf.subarray(end + 4) })
    }
    const onEnd = (): void => reject(new Error(`connection ended before a response head: ${JSON.stringify(buf.toString('latin1'))}`))
    socket.on('data', onData)
    socket.once('end', onEnd)
  })
}

/** Reads until the socket ends; resolves with everything read. */
export async function readAll (socket: net.Socket): Promise<string> {
  let got = ''
  socket.on('data', (d: Buffer) => { got += d.toString('latin1') })
  socket.resume()
  await once(socket, 'end')
  return got
}

/** Reads from `stream` until `text` has arrived; resolves with everything read. */
export async function readUntil (stream: NodeJS.ReadableStream, text: string): Promise<string> {
  let got = ''
  for await (const chunk of stream) {
    got += Buffer.isBuffer(chunk) ? chunk.toString('latin1') : String(chunk)
    if (got.includes(text)) return got
  }
  throw new Error(`stream ended before ${JSON.stringify(text)}; got ${JSON.stringify(got)}`)
}

/** Counts HTTP/2 sessions a server accepts, and records every CONNECT stream's request headers as received. */
export function watchHttp2 (server: unknown): { sessions: http2.ServerHttp2Session[], connects: http2.IncomingHttpHeaders[] } {
  const sessions: http2.ServerHttp2Session[] = []
  const connects: http2.IncomingHttpHeaders[] = []
  const s = server as http2.Http2Server
  s.on('session', (session: http2.ServerHttp2Session) => sessions.push(session))
  // Before the plugin's listener reshapes them: a copy of the headers as they came off the wire.
  s.prependListener('stream', (_stream, headers) => {
    if (headers[':method'] === 'CONNECT') connects.push({ ...headers })
  })
  return { sessions, connects }
}

/** Resolves once `app.switchyard.stats()[name]` equals `value` (checked after every tunnel close). */
export async function waitForGauge (app: FastifyInstance, name: string, value: number): Promise<void> {
  const read = (): number => ((app as unknown as { switchyard: { stats (): Record<string, number> } }).switchyard.stats()[name] ?? 0)
  while (read() !== value) {
    await new Promise<void>((resolve) => {
      const onClose = (): void => { diagnostics.unsubscribe('switchyard:tunnel:close', onClose); setImmediate(resolve) }
      diagnostics.subscribe('switchyard:tunnel:close', onClose)
    })
  }
}
