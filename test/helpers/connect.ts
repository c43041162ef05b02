/**
 * What the CONNECT tests share: a TCP echo (the thing a terminated CONNECT reaches), a CONNECT client on
 * Node's own `http.request({ method: 'CONNECT' })`, curl as a proxy client, and an HTTP/2 sidecar that
 * terminates CONNECT.
 */
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { TestContext } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy, type SwitchyardOptions } from '@switchyard/core'
import h2Connect from '@switchyard/h2-connect'
import { listen } from './net.ts'
import { peerPath } from './peers.ts'

export interface TcpEcho {
  port: number
  /** Connections accepted so far. */
  readonly connections: number
  /** Every byte each connection received, by connection index. */
  received: Buffer[]
  /** Server-side sockets, in order. */
  sockets: net.Socket[]
}

/** A TCP server that echoes every byte and carries a half-close (allowHalfOpen): a FIN in, a FIN out. */
export async function tcpEcho (t: TestContext): Promise<TcpEcho> {
  const received: Buffer[] = []
  const sockets: net.Socket[] = []
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const index = sockets.push(socket) - 1
    received[index] = Buffer.alloc(0)
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => { received[index] = Buffer.concat([received[index]!, chunk]) })
    socket.pipe(socket)
  })
  const port = await listen(t, server)
  return { port, received, sockets, get connections () { return sockets.length } }
}

export interface ConnectResult {
  res: http.IncomingMessage
  socket: net.Socket
  head: Buffer
}

/** A CONNECT through the proxy on Node's own client; resolves at the answer, whatever its status. */
export async function connectVia (t: TestContext, port: number, target: string, headers: Record<string, string> = {}): Promise<ConnectResult> {
  const req = http.request({ host: '127.0.0.1', port, method: 'CONNECT', path: target, headers, agent: false })
  req.on('error', () => {})
  req.end()
  const [res, socket, head] = await once(req, 'connect') as [http.IncomingMessage, net.Socket, Buffer]
  socket.on('error', () => {})
  t.after(() => { socket.destroy() })
  return { res, socket, head }
}

/** Reads `socket` until `n` bytes have arrived (starting with `head`). */
export async function readBytes (socket: net.Socket, n: number, head: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  let got = head
  while (got.length < n) {
    const [chunk] = await once(socket, 'data') as [Buffer]
    got = Buffer.concat([got, chunk])
  }
  return got
}

/** Runs curl with `args`; resolves with its stdout, stderr and exit code (never rejects). */
export async function curl (args: string[]): Promise<{ stdout: string, stderr: string, code: number }> {
  return await new Promise((resolve) => {
    execFile(peerPath('curl'), ['--silent', '--show-error', '--max-time', '20', ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ stdout, stderr, code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1 })
    })
  })
}

/**
 * An HTTP/2 (h2c) Switchyard that terminates every CONNECT to `targetPort` (`connectConfig`): the far
 * side of an H1 CONNECT → H2 → TCP path.
 */
export async function connectSidecar (t: TestContext, targetPort: number, options: Partial<SwitchyardOptions> = {}): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify({ http2: true, forceCloseConnections: true }) as unknown as FastifyInstance
  t.after(() => app.close())
  await app.register(switchyard, {
    clusters: { target: { endpoints: [`127.0.0.1:${targetPort}`] } },
    upgradeConfigs: [{ upgradeType: 'CONNECT' }],
    ...options
  })
  await app.register(h2Connect)
  app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'target' }, connectConfig: {}, handler: proxy })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as net.AddressInfo).port }
}
