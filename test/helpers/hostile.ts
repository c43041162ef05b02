import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import diagnostics from 'node:diagnostics_channel'
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard from '@switchyard/core'
import { freePort } from './net.ts'
import { H2_PREFACE, h2Frame } from './h2-frame.ts'

/**
 * A raw HTTP/1.1 upstream whose behaviour is chosen by the request path, for hostile-input tables:
 * `/accept` (101 naming the requested type, then echo), `/garbage`, `/close-on-head`, `/reset-on-head`,
 * `/101-no-upgrade`, `/101-other`, `/half-101`, `/silent` (never answers), the refusals `/426`, `/426-keep-alive`,
 * `/200-upgrade`, `/302`, `/500`, and the cases of `answer` below; anything else a plain 200.
 * Every request head it receives is recorded, with the bytes that followed it.
 */
export interface ScriptedUpstream {
  server: net.Server
  port: number
  heads: string[]
  /** Bytes received after each head, keyed by the head's index. */
  after: Map<number, string>
  sockets: Set<net.Socket>
  /** For each head, the number of the connection it came on (connections are numbered from 0 as accepted). */
  headConnection: number[]
  /** Connections accepted so far. */
  readonly connections: number
  close (): Promise<void>
}

export async function scriptedUpstream (): Promise<ScriptedUpstream> {
  const heads: string[] = []
  const after = new Map<number, string>()
  const sockets = new Set<net.Socket>()
  const headConnection: number[] = []
  let connections = 0
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const connection = connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    let index = -1
    socket.on('data', (chunk: Buffer) => {
      if (index >= 0) {
        after.set(index, (after.get(index) ?? '') + chunk.toString('latin1'))
        return
      }
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = buf.subarray(0, end).toString('latin1')
      index = heads.push(head) - 1
      headConnection[index] = connection
      const rest = buf.subarray(end + 4)
      if (rest.length > 0) after.set(index, rest.toString('latin1'))
      answer(socket, head)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    heads,
    after,
    sockets,
    headConnection,
    get connections () { return connections },
    close: async () => {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}

function answer (socket: net.Socket, head: string): void {
  const path = head.split(' ')[1] ?? '/'
  const type = /\r\nupgrade: *([^\r\n]*)/i.exec(head)?.[1]?.trim() ?? ''
  const route = path.split('?')[0]!.replace(/^\/(ws|foo|legacy)/, '') || '/accept'
  switch (route) {
    case '/accept':
      if (type === '') { plain(socket); return }
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\n\r\n`)
      socket.on('data', (d) => socket.write(d))
      socket.on('end', () => socket.end())
      return
    case '/garbage':
      socket.end('NOT HTTP AT ALL\r\n\r\n')
      return
    case '/close-on-head':
      socket.end()
      return
    case '/reset-on-head':
      socket.resetAndDestroy()
      return
    case '/101-no-upgrade':
      socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n\r\n')
      return
    case '/101-other':
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: something-else\r\nconnection: upgrade\r\n\r\n')
      return
    case '/half-101':
      socket.end('HTTP/1.1 101 Swi')
      return
    case '/silent':
      return
    case '/426':
      socket.end('HTTP/1.1 426 Upgrade Required\r\ncontent-length: 4\r\n\r\nnope')
      return
    case '/426-keep-alive':
      // A refusal that keeps the connection open, so a pipelined request would be read next.
      socket.write('HTTP/1.1 426 Upgrade Required\r\ncontent-length: 4\r\nconnection: keep-alive\r\n\r\nnope')
      return
    case '/200-upgrade':
      socket.write('HTTP/1.1 200 OK\r\nconnection: upgrade\r\nupgrade: websocket\r\ncontent-length: 2\r\n\r\nno')
      return
    case '/302':
      socket.end('HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n')
      return
    case '/500':
      socket.end('HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\nboom')
      return
    case '/bad-accept':
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\nsec-websocket-accept: d3Jvbmc=\r\n\r\n`)
      socket.on('data', (d) => socket.write(d))
      socket.on('end', () => socket.end())
      return
    case '/101-case':
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type.toUpperCase()}\r\nconnection: Upgrade\r\n\r\n`)
      socket.on('data', (d) => socket.write(d))
      socket.on('end', () => socket.end())
      return
    case '/101-two':
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}, other\r\nconnection: upgrade\r\n\r\n`)
      return
    case '/100-then-101':
      socket.write('HTTP/1.1 100 Continue\r\n\r\n')
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\n\r\n`)
      socket.on('data', (d) => socket.write(d))
      socket.on('end', () => socket.end())
      return
    case '/101-with-data':
      // The upstream speaks first, in the same write as its 101.
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\n\r\nHELLO`)
      socket.on('data', (d) => socket.write(d))
      socket.on('end', () => socket.end())
      return
    case '/close-after-101':
      socket.end(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\n\r\nBYE`)
      return
    case '/reset-after-101':
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\n\r\n`, () => socket.resetAndDestroy())
      return
    case '/reset-on-data':
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\n\r\n`)
      socket.once('data', () => socket.resetAndDestroy())
      return
    case '/garbage-open':
      // Not HTTP, and the connection stays open: the parser error alone must end the exchange.
      socket.write('\x00\x01\x02 garbage\r\n\r\n')
      return
    case '/half-101-open':
      socket.write('HTTP/1.1 101 Swi')
      return
    case '/huge-head':
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\nx-big: ${'b'.repeat(100 * 1024)}\r\n\r\n`)
      return
    case '/http10-101':
      socket.write(`HTTP/1.0 101 Switching Protocols\r\nupgrade: ${type}\r\nconnection: upgrade\r\n\r\n`)
      socket.on('data', (d) => socket.write(d))
      socket.on('end', () => socket.end())
      return
    default:
      plain(socket)
  }
}

function plain (socket: net.Socket): void {
  socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok')
}

export interface RawResult {
  /** Everything the client received. */
  data: string
  /** The status code of the first response line, or null when none came. */
  status: number | null
  /** How the connection ended for the client. */
  ended: 'close' | 'reset'
}

/**
 * Writes `parts` to a new connection (each part a write; `'END'` half-closes, `'DESTROY'` drops the
 * connection), then reads until the server closes it.
 */
export type RawPart = string | Buffer | 'END' | 'DESTROY' | 'CLOSE_AFTER_RESPONSE' | 'AWAIT_HEAD'

export async function rawExchange (port: number, parts: RawPart[]): Promise<RawResult> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  let data = ''
  let ended: RawResult['ended'] = 'close'
  socket.on('data', (d: Buffer) => { data += d.toString('latin1') })
  socket.on('error', () => { ended = 'reset' })
  const closed = new Promise((resolve) => socket.once('close', resolve))
  for (const part of parts) {
    if (part === 'END') socket.end()
    else if (part === 'DESTROY') socket.destroy()
    else if (part === 'AWAIT_HEAD') {
      while (!data.includes('\r\n\r\n') && !socket.destroyed) await once(socket, 'data').catch(() => {})
    } else if (part === 'CLOSE_AFTER_RESPONSE') {
      // A keep-alive response: close once its head and Content-Length body have arrived.
      while (!responseComplete(data) && !socket.destroyed) await once(socket, 'data').catch(() => {})
      socket.end()
    } else socket.write(part)
  }
  await closed
  const status = /^HTTP\/1\.1 (\d{3})/.exec(data)
  return { data, status: status === null ? null : Number(status[1]), ended }
}

function responseComplete (data: string): boolean {
  const end = data.indexOf('\r\n\r\n')
  if (end === -1) return false
  const length = /\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end))
  return data.length - end - 4 >= Number(length?.[1] ?? 0)
}

/** Resolves once no upgrade stream is active, waiting on `switchyard:tunnel:close` events. */
export async function upgradesSettled (app: FastifyInstance): Promise<void> {
  const active = (): number => app.switchyard.stats().downstream_cx_upgrades_active ?? 0
  if (active() === 0) return
  await new Promise<void>((resolve) => {
    const channel = diagnostics.channel('switchyard:tunnel:close')
    const onClose = (): void => {
      // The gauge is decremented before the event is published.
      if (active() === 0) {
        channel.unsubscribe(onClose)
        resolve()
      }
    }
    channel.subscribe(onClose)
    onClose()
  })
}

/**
 * Resolves once every named gauge of `app.switchyard.stats()` is zero, waiting on `switchyard:tunnel:close`
 * events (new-style and legacy streams both publish one after decrementing their gauge).
 */
export async function gaugesSettled (app: FastifyInstance, names: readonly string[]): Promise<void> {
  const busy = (): boolean => names.some((name) => (app.switchyard.stats()[name] ?? 0) !== 0)
  if (!busy()) return
  await new Promise<void>((resolve) => {
    const channel = diagnostics.channel('switchyard:tunnel:close')
    const onClose = (): void => {
      if (!busy()) {
        channel.unsubscribe(onClose)
        resolve()
      }
    }
    channel.subscribe(onClose)
    onClose()
  })
}

/** What a raw HTTP/2 client saw of its one stream: the `:status` of a response, or the RST_STREAM code. */
export interface RawH2Result { status: number | null, rstCode: number | null, goaway: number | null }

/**
 * Opens an h2c connection by hand and sends one HEADERS frame (stream 1, END_HEADERS) of `headers` exactly as
 * given, HPACK literals without indexing or Huffman: for frames node:http2's client refuses to build
 * (missing `:path`, connection-specific fields, upper-case names). Resolves at the first HEADERS, RST_STREAM
 * or GOAWAY for the stream; `:status` is read when sent as a static-table index or a literal with an indexed name.
 */
export async function rawH2Stream (port: number, headers: Array<[string, string]>): Promise<RawH2Result> {
  const literal = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')])
  const block = Buffer.concat(headers.map(([name, value]) => Buffer.concat([Buffer.from([0x00]), literal(name), literal(value)])))
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(Buffer.concat([H2_PREFACE, h2Frame(0x4, 0, 0, Buffer.alloc(0)), h2Frame(0x1, 0x4, 1, block)]))
  const result: RawH2Result = { status: null, rstCode: null, goaway: null }
  let buf = Buffer.alloc(0)
  await new Promise<void>((resolve) => {
    socket.on('close', () => resolve())
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3)
        if (buf.length < 9 + length) return
        const type = buf[3]!
        const flags = buf[4]!
        const id = buf.readUInt32BE(5) & 0x7fffffff
        const payload = buf.subarray(9, 9 + length)
        buf = buf.subarray(9 + length)
        if (type === 0x4) {
          if ((flags & 0x1) === 0) socket.write(h2Frame(0x4, 0x1, 0, Buffer.alloc(0)))
          continue
        }
        if (type === 0x7) result.goaway = payload.readUInt32BE(4)
        else if (type === 0x3 && id === 1) result.rstCode = payload.readUInt32BE(0)
        else if (type === 0x1 && id === 1) result.status = statusOf(payload)
        else continue
        socket.destroy()
        return
      }
    })
  })
  return result
}

/** RFC 7541 static table entries 8–14 are `:status` 200, 204, 206, 304, 400, 404, 500; index 8 names `:status`. */
function statusOf (block: Buffer): number | null {
  const first = block[0]!
  if ((first & 0x80) !== 0) return [200, 204, 206, 304, 400, 404, 500][(first & 0x7f) - 8] ?? null
  if (first === 0x48 || first === 0x08) {
    const length = block[1]!
    if ((length & 0x80) !== 0) return null
    return Number(block.subarray(2, 2 + length).toString('latin1'))
  }
  return null
}

/**
 * The front the hostile tables attack: core with clusters `up` (the scripted upstream) and `dead` (a port
 * nothing listens on), WebSocket and `foo` enabled; `routes` adds the table's routes (and plugins).
 */
export async function hostileFront (routes: (app: FastifyInstance) => void | Promise<void>): Promise<{ app: FastifyInstance, upstream: ScriptedUpstream, port: number }> {
  const upstream = await scriptedUpstream()
  const deadPort = await freePort()
  const app = Fastify()
  await app.register(switchyard, {
    clusters: {
      up: { endpoints: [`127.0.0.1:${upstream.port}`] },
      dead: { endpoints: [`127.0.0.1:${deadPort}`], connectTimeout: 1000 }
    },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo' }]
  })
  await routes(app)
  app.get('/plain', async () => 'plain')
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, upstream, port: (app.server.address() as net.AddressInfo).port }
}

/** One row of a hostile table: what the client sends, and the exact status it gets (null: a close, no response). */
export interface HostileCase {
  name: string
  parts: RawPart[]
  status: number | null
  check? (result: RawResult, headIndex: number): void
}

/**
 * One test per row: the exact status (or close), the row's own check, then every named gauge back to zero
 * and the next request on the front served. `front` is read when the test runs (set in `before`).
 */
export function runHostileCases (cases: readonly HostileCase[], front: () => { app: FastifyInstance, upstream: ScriptedUpstream, port: number }, gauges: readonly string[]): void {
  for (const c of cases) {
    test(c.name, { timeout: 5000 }, async () => {
      const { app, upstream, port } = front()
      const headIndex = upstream.heads.length
      const result = await rawExchange(port, c.parts)
      assert.equal(result.status, c.status, `got: ${JSON.stringify(result.data.slice(0, 200))}`)
      c.check?.(result, headIndex)
      await gaugesSettled(app, gauges)
      for (const gauge of gauges) assert.equal(app.switchyard.stats()[gauge] ?? 0, 0, `${gauge} back to zero`)
      const next = await rawExchange(port, ['GET /plain HTTP/1.1\r\nhost: f\r\nconnection: close\r\n\r\n'])
      assert.equal(next.status, 200, 'the next request is served')
    })
  }
}
