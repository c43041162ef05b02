/**
 * Named upstream endpoints for the cluster-manager tests (load balancing, health checks, outlier
 * detection, circuit breakers, endpoints that change). Each backend is one HTTP/1.1 server on 127.0.0.1
 * that says who it is (`x-backend: <name>` on every answer, the 101 included), counts what reached it
 * (upgrades, plain requests, health checks, TCP connections and the most open at once), and can be told
 * how to answer: its health check (`ok`, `fail`, `garbage`, `silent`, `reset`, `held`) and its traffic (a status
 * instead of 200/101). An accepted upgrade is a raw echo: every byte comes back, so a tunnel can be
 * checked end to end without a framing library; the 101 carries the right `Sec-WebSocket-Accept` so the
 * HTTP/2 hop's key check passes.
 */
import { createHash } from 'node:crypto'
import { EventEmitter, once } from 'node:events'
import http from 'node:http'
import type net from 'node:net'
import type { TestContext } from 'node:test'

/** How a backend answers `GET /healthz` (`held`: not yet; `answerHeldChecks()` answers 200 later). */
export type HealthMode = 'ok' | 'fail' | 'garbage' | 'silent' | 'reset' | 'held'

export class Backend extends EventEmitter {
  readonly name: string
  port = 0
  /** How `/healthz` is answered now. */
  health: HealthMode = 'ok'
  /** 0: requests get 200 and upgrades 101; otherwise this status answers both. */
  status = 0
  upgrades = 0
  requests = 0
  healthChecks = 0
  connections = 0
  peakOpen = 0
  /** TCP connections open now (health checks included). */
  readonly open = new Set<net.Socket>()
  /** Upgraded sockets still open. */
  readonly tunnels = new Set<net.Socket>()
  /** Plain requests to `/hold…` left unanswered until `release()`. */
  readonly held = new Set<http.ServerResponse>()
  /** Request heads (method, url, headers) of every upgrade and plain request, in order. */
  readonly seen: Array<{ method: string, url: string, headers: http.IncomingHttpHeaders, upgrade: boolean }> = []

  constructor (name: string) {
    super()
    this.name = name
  }

  host = '127.0.0.1'

  get address (): string {
    return `${this.host}:${this.port}`
  }

  /** Health checks left unanswered in `held` mode. */
  readonly heldChecks = new Set<http.ServerResponse>()

  /** Answers the held health checks with 200. */
  answerHeldChecks (): void {
    for (const res of this.heldChecks) res.end('ok')
    this.heldChecks.clear()
  }

  /** Answers the held plain requests. */
  release (): void {
    for (const res of this.held) res.end(`${this.name} released`)
    this.held.clear()
  }

  /** Traffic that reached it: upgrades and plain requests, not health checks. */
  get traffic (): number {
    return this.upgrades + this.requests
  }

  /** Resolves after the next health check it answers (or drops). */
  async nextHealthCheck (): Promise<void> {
    await once(this, 'healthCheck')
  }
}

/** Starts `n` backends named `b0`, `b1`, …; `t.after` closes them with their connections. */
export async function startBackends (t: TestContext, n: number): Promise<Backend[]> {
  const out: Backend[] = []
  for (let i = 0; i < n; i++) out.push(await startBackend(t, `b${i}`))
  return out
}

/** One backend on `host` (any 127.0.0.0/8 address) and `port` (0: any free one). */
export async function startBackend (t: TestContext, name: string, host = '127.0.0.1', port = 0): Promise<Backend> {
  const b = new Backend(name)
  b.host = host
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') { answerHealth(b, req, res); return }
    b.requests++
    b.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: false })
    req.resume()
    if (req.url?.startsWith('/hold') === true) {
      // A first chunk, so that the head crosses every hop at once; the rest waits for release().
      res.writeHead(200, { 'x-backend': b.name, 'content-type': 'text/plain' })
      res.write(`${b.name} holding\n`)
      b.held.add(res)
      res.on('close', () => b.held.delete(res))
      return
    }
    const status = b.status === 0 ? 200 : b.status
    const body = `${b.name} ${req.method} ${req.url}`
    res.writeHead(status, { 'x-backend': b.name, 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  server.on('connection', (socket: net.Socket) => {
    b.connections++
    b.open.add(socket)
    if (b.open.size > b.peakOpen) b.peakOpen = b.open.size
    socket.on('close', () => {
      b.open.delete(socket)
      b.tunnels.delete(socket)
      b.emit('closed', socket)
    })
  })
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on('error', () => {})
    b.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: true })
    if (b.status !== 0) {
      const body = `${b.name} refused`
      socket.end(`HTTP/1.1 ${b.status} Refused\r\nx-backend: ${b.name}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`)
      return
    }
    b.upgrades++
    const type = req.headers.upgrade ?? 'websocket'
    const key = req.headers['sec-websocket-key']
    const accept = typeof key === 'string'
      ? `sec-websocket-accept: ${createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')}\r\n`
      : ''
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\n${accept}x-backend: ${b.name}\r\n\r\n`)
    b.tunnels.add(socket)
    if (head.length > 0) socket.write(head)
    socket.on('data', (d: Buffer) => socket.write(d))
    socket.on('end', () => socket.end())
    b.emit('upgrade', socket)
  })
  server.listen(port, host)
  await once(server, 'listening')
  t.after(async () => {
    for (const s of b.open) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  b.port = (server.address() as net.AddressInfo).port
  return b
}

function answerHealth (b: Backend, req: http.IncomingMessage, res: http.ServerResponse): void {
  b.healthChecks++
  const done = (): void => { b.emit('healthCheck', req) }
  switch (b.health) {
    case 'ok':
      res.end('ok', done)
      return
    case 'fail':
      res.writeHead(503).end('down', done)
      return
    case 'garbage':
      // Not HTTP at all: the checker's parser must fail, not hang or crash.
      req.socket.end('SSH-2.0-OpenSSH_9.2\r\n\u0000\u0001garbage\r\n\r\n', done)
      return
    case 'held':
      b.heldChecks.add(res)
      res.on('close', () => b.heldChecks.delete(res))
      done()
      return
    case 'silent':
      // Never answers: the check times out and must close its socket itself.
      done()
      return
    case 'reset':
      req.socket.resetAndDestroy()
      done()
  }
}

/** Counts per backend name, for distribution assertions. */
export function tally (names: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const name of names) out[name] = (out[name] ?? 0) + 1
  return out
}
