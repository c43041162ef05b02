/**
 * Upstreams the end-to-end tests proxy to: a `ws` echo server that records each handshake, and raw
 * `node:net` servers that capture request heads byte for byte and answer as a test scripts them.
 */
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { TestContext } from 'node:test'
import { WebSocketServer, type WebSocket, type ServerOptions } from 'ws'
import { listen } from './net.ts'

export interface WsEchoUpstream {
  port: number
  wss: WebSocketServer
  /** The handshake request of every accepted WebSocket, in order. */
  requests: http.IncomingMessage[]
  /** Server-side sockets, in order. */
  sockets: WebSocket[]
  /** Plain (non-upgrade) requests the HTTP server answered. */
  plain: http.IncomingMessage[]
}

/** A `ws` server that echoes every message back unchanged (text stays text, binary stays binary). */
export async function wsEchoUpstream (t: TestContext, options: Omit<ServerOptions, 'server' | 'port' | 'noServer'> = {}): Promise<WsEchoUpstream> {
  const plain: http.IncomingMessage[] = []
  const server = http.createServer((req, res) => {
    plain.push(req)
    res.end(`plain ${req.method} ${req.url}`)
  })
  const wss = new WebSocketServer({ server, ...options })
  const requests: http.IncomingMessage[] = []
  const sockets: WebSocket[] = []
  wss.on('connection', (ws, req) => {
    requests.push(req)
    sockets.push(ws)
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
    ws.on('error', () => {})
  })
  const port = await listen(t, server)
  t.after(() => { for (const ws of sockets) ws.terminate(); wss.close() })
  return { port, wss, requests, sockets, plain }
}

export interface UpstreamConnection {
  socket: net.Socket
  /** The request head, up to and including the blank line, as latin1 text. */
  head: string
  /** Bytes that arrived in the same reads as the head, after it. */
  rest: Buffer
  /** Index of this connection at the server (0 for the first). */
  index: number
}

export interface RawUpstream {
  port: number
  server: net.Server
  /** Every request head received, in order (one per connection: the first head on it). */
  heads: string[]
  /** Connections accepted so far. */
  readonly connections: number
  /** Every byte received on each connection after its first head, keyed by connection index. */
  after: Map<number, Buffer>
  /** Resolves with the next connection whose head has arrived. */
  next (): Promise<UpstreamConnection>
}

/**
 * A raw HTTP/1.1 upstream (allowHalfOpen). For each connection it reads the first request head, records
 * it, then calls `handler` (or leaves it to a test awaiting `next()`).
 */
export async function rawUpstream (t: TestContext, handler?: (conn: UpstreamConnection) => void): Promise<RawUpstream> {
  const heads: string[] = []
  const after = new Map<number, Buffer>()
  const queue: UpstreamConnection[] = []
  const waiting: Array<(c: UpstreamConnection) => void> = []
  let connections = 0
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const index = connections++
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    let seen = false
    socket.on('data', (chunk: Buffer) => {
      if (seen) {
        after.set(index, Buffer.concat([after.get(index) ?? Buffer.alloc(0), chunk]))
        return
      }
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      seen = true
      const head = buf.toString('latin1', 0, end + 4)
      const rest = buf.subarray(end + 4)
      heads.push(head)
      if (rest.length > 0) after.set(index, Buffer.from(rest))
      const conn = { socket, head, rest, index }
      if (handler !== undefined) handler(conn)
      else if (waiting.length > 0) waiting.shift()!(conn)
      else queue.push(conn)
    })
  })
  const port = await listen(t, server)
  return {
    port,
    server,
    heads,
    after,
    get connections () { return connections },
    next () {
      const ready = queue.shift()
      if (ready !== undefined) return Promise.resolve(ready)
      return new Promise((resolve) => waiting.push(resolve))
    }
  }
}

/** The value of header `name` in a raw head (first occurrence), or undefined. */
export function headerOf (head: string, name: string): string | undefined {
  const re = new RegExp(`\\r\\n${name}:[ \\t]*([^\\r\\n]*)`, 'i')
  return re.exec(head)?.[1]?.trim()
}

/** Every header name in a raw head, lower-cased, in order. */
export function headerNames (head: string): string[] {
  return head.split('\r\n').slice(1).filter((l) => l.includes(':')).map((l) => l.slice(0, l.indexOf(':')).trim().toLowerCase())
}

/** Answers `conn` with a 101 naming the requested upgrade type. */
export function accept (conn: UpstreamConnection, extra = ''): void {
  const type = headerOf(conn.head, 'upgrade') ?? 'websocket'
  conn.socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${type}\r\nConnection: Upgrade\r\n${extra}\r\n`)
}

/** True when a raw request head asks for an upgrade (an Upgrade header and the `upgrade` Connection token). */
export function isUpgradeHead (head: string): boolean {
  const connection = headerOf(head, 'connection') ?? ''
  return headerOf(head, 'upgrade') !== undefined && connection.split(',').some((v) => v.trim().toLowerCase() === 'upgrade')
}

/** Answers a plain request with 200 and body `plain <METHOD> <path>`, then closes. */
export function answerPlain (conn: UpstreamConnection): void {
  const [method, path] = conn.head.split(' ')
  const body = `plain ${method} ${path}`
  conn.socket.end(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`)
}

/**
 * A raw upgrade upstream: answers any upgrade with 101 (the same type), then echoes every byte, including
 * bytes that arrived with the head, and half-closes when the proxy does. A plain request gets `answerPlain`.
 */
export async function rawUpgradeEcho (t: TestContext): Promise<RawUpstream> {
  return await rawUpstream(t, (conn) => {
    if (!isUpgradeHead(conn.head)) { answerPlain(conn); return }
    accept(conn)
    if (conn.rest.length > 0) conn.socket.write(conn.rest)
    conn.socket.on('data', (d: Buffer) => conn.socket.write(d))
    conn.socket.on('end', () => conn.socket.end())
  })
}

/** Waits until `socket` closes (resolves at once if it already has). */
export async function closed (socket: net.Socket): Promise<void> {
  if (socket.closed) return
  await once(socket, 'close')
}

/**
 * Waits until the peer has finished with `socket`: FIN received (the raw upstreams are allowHalfOpen) or
 * the socket closed.
 */
export async function finished (socket: net.Socket): Promise<void> {
  if (socket.closed || socket.readableEnded) return
  await new Promise<void>((resolve) => {
    socket.once('end', () => resolve())
    socket.once('close', () => resolve())
  })
}
