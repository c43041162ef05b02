// The load client, in its own process: raw `net` sockets and precomputed bytes, so its own cost stays small.
// Every loop is bounded by a count and by a deadline.
import { connect, type Socket } from 'node:net'
import { echoReply, HeadReader, message, sourceWireBytes, statusOf, upgradeRequest, type UpgradeType } from './wire.ts'
import { announceReady, sampleSelf, serveRpc } from './rpc.ts'

const tunnels: Socket[] = []

/** A message and the echo upstream's answer to it (for WebSocket, the server framing of the same payload). */
interface Exchange { request: Buffer, reply: Buffer }
const exchanges = new Map<string, Exchange>()

/** Precomputed once per upgrade type and payload size. */
function exchange (type: UpgradeType, payloadBytes: number): Exchange {
  const key = `${type}:${payloadBytes}`
  let found = exchanges.get(key)
  if (found === undefined) {
    found = { request: message(type, payloadBytes), reply: echoReply(type, payloadBytes) }
    exchanges.set(key, found)
  }
  return found
}

/** Connects, writes the upgrade request, and resolves once the 101 head is in (with any bytes after it). */
function handshake (port: number, request: Buffer, deadline: number): Promise<{ socket: Socket, rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true })
    const reader = new HeadReader()
    const timer = setTimeout(() => fail(new Error('handshake timed out')), Math.max(1, deadline - Date.now()))
    const fail = (err: Error): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    socket.on('error', fail)
    socket.once('close', () => fail(new Error('closed during the handshake')))
    const onData = (chunk: Buffer): void => {
      const parsed = reader.push(chunk)
      if (parsed === null) return
      clearTimeout(timer)
      socket.off('data', onData)
      socket.removeAllListeners('close')
      socket.removeListener('error', fail)
      socket.on('error', () => {})
      const status = statusOf(parsed.head)
      if (status !== 101) {
        socket.destroy()
        reject(new Error(`expected 101, got: ${parsed.head.split('\r\n')[0]}`))
        return
      }
      resolve({ socket, rest: parsed.rest })
    }
    socket.on('data', onData)
    socket.write(request)
  })
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight. */
async function bounded (count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

/** Writes the probe's request, reads exactly `reply.length` bytes and checks they are the expected reply. */
function verifyEcho (socket: Socket, rest: Buffer, probe: Exchange, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = rest
    const timer = setTimeout(() => done(new Error('echo check timed out')), Math.max(1, deadline - Date.now()))
    const done = (err?: Error): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      if (err !== undefined) reject(err)
      else resolve()
    }
    const check = (): void => {
      if (got.length < probe.reply.length) return
      done(got.equals(probe.reply) ? undefined : new Error('echoed bytes differ from the expected reply'))
    }
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk])
      check()
    }
    socket.on('data', onData)
    socket.write(probe.request)
    check()
  })
}

interface OpenParams { port: number, count: number, concurrency: number, type: UpgradeType, verify: boolean, timeoutMs: number }

/** Opens `count` tunnels and keeps them (idle) for the next call; with `verify`, each echoes one probe message first. */
async function open (p: OpenParams): Promise<{ opened: number, wallMs: number }> {
  const request = upgradeRequest(p.type, p.port)
  const probe = exchange(p.type, 64)
  const deadline = Date.now() + p.timeoutMs
  const start = performance.now()
  await bounded(p.count, p.concurrency, async () => {
    const { socket, rest } = await handshake(p.port, request, deadline)
    tunnels.push(socket)
    if (p.verify) await verifyEcho(socket, rest, probe, deadline)
    else if (rest.length > 0) throw new Error('unexpected bytes after the 101 on an idle tunnel')
  })
  return { opened: tunnels.length, wallMs: performance.now() - start }
}

interface EchoParams {
  payloadBytes: number
  roundTrips: number
  window: number
  type: UpgradeType
  timeoutMs: number
  /** Given: at most this many messages in flight in all, one per tunnel, the tunnels taken in turn (scale phases). */
  concurrency?: number
}

/**
 * `roundTrips` echoes spread over every open tunnel, at most `window` messages in flight per
 * tunnel (window 1: a message is never coalesced with the next one in a socket buffer, so every
 * message costs each hop one read and one write). Counts bytes only: every reply is `reply.length`
 * bytes (the upstream's answer was checked byte for byte when the tunnel was opened).
 */
function echo (p: EchoParams): Promise<{ roundTrips: number, wallMs: number, cpuMicros: number }> {
  if (tunnels.length === 0) return Promise.reject(new Error('no open tunnels'))
  if (p.concurrency !== undefined) return echoSpread(p, p.concurrency)
  const { request: msg, reply } = exchange(p.type, p.payloadBytes)
  const len = reply.length
  const cpu0 = process.cpuUsage()
  const start = performance.now()
  let budget = p.roundTrips
  let done = 0
  return new Promise((resolve, reject) => {
    const listeners: Array<[Socket, (chunk: Buffer) => void]> = []
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      for (const [socket, listener] of listeners) socket.off('data', listener)
      if (err !== undefined) { reject(err); return }
      const cpu = process.cpuUsage(cpu0)
      resolve({ roundTrips: done, wallMs: performance.now() - start, cpuMicros: cpu.user + cpu.system })
    }
    const timer = setTimeout(() => finish(new Error(`echo timed out after ${done} of ${p.roundTrips} round trips`)), p.timeoutMs)
    for (const socket of tunnels) {
      let received = 0
      let inFlight = 0
      const onData = (chunk: Buffer): void => {
        received += chunk.length
        while (received >= len) {
          received -= len
          inFlight--
          done++
          if (budget > 0) {
            budget--
            inFlight++
            socket.write(msg)
          }
        }
        if (done === p.roundTrips) finish()
        else if (inFlight === 0 && received > 0) finish(new Error('echo returned more bytes than were sent'))
      }
      listeners.push([socket, onData])
      socket.on('data', onData)
      for (let i = 0; i < p.window && budget > 0; i++) {
        budget--
        inFlight++
        socket.write(msg)
      }
    }
    if (p.roundTrips === 0) finish()
  })
}

/**
 * `roundTrips` echoes with `concurrency` messages in flight in all, one per tunnel, every open tunnel used
 * in turn: the same load whatever the number of tunnels, so cost per message can be compared from 100
 * tunnels to 10,000 (each message then lands on a tunnel that was idle a while, as in a real fleet).
 */
function echoSpread (p: EchoParams, concurrency: number): Promise<{ roundTrips: number, wallMs: number, cpuMicros: number }> {
  const { request: msg, reply } = exchange(p.type, p.payloadBytes)
  const len = reply.length
  const n = tunnels.length
  const busy = new Uint8Array(n)
  const cpu0 = process.cpuUsage()
  const start = performance.now()
  let budget = p.roundTrips
  let done = 0
  let next = 0
  return new Promise((resolve, reject) => {
    const listeners: Array<[Socket, (chunk: Buffer) => void]> = []
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      for (const [socket, listener] of listeners) socket.off('data', listener)
      if (err !== undefined) { reject(err); return }
      const cpu = process.cpuUsage(cpu0)
      resolve({ roundTrips: done, wallMs: performance.now() - start, cpuMicros: cpu.user + cpu.system })
    }
    const timer = setTimeout(() => finish(new Error(`echo timed out after ${done} of ${p.roundTrips} round trips`)), p.timeoutMs)
    /** Sends one message on the next tunnel in turn that has none in flight. */
    const send = (): void => {
      if (budget === 0) return
      for (let tries = 0; tries < n; tries++) {
        const i = next
        next = (next + 1) % n
        if (busy[i] === 1) continue
        busy[i] = 1
        budget--
        tunnels[i].write(msg)
        return
      }
    }
    tunnels.forEach((socket, i) => {
      let received = 0
      const onData = (chunk: Buffer): void => {
        received += chunk.length
        if (received > len) { finish(new Error('echo returned more bytes than were sent')); return }
        if (received < len) return
        received = 0
        busy[i] = 0
        done++
        if (done === p.roundTrips) finish()
        else send()
      }
      listeners.push([socket, onData])
      socket.on('data', onData)
    })
    for (let i = 0; i < Math.min(concurrency, n); i++) send()
    if (p.roundTrips === 0) finish()
  })
}

/** Destroys every open tunnel and waits until each has closed. */
async function closeAll (): Promise<void> {
  const closing = tunnels.splice(0).map((socket) => new Promise<void>((resolve) => {
    if (socket.closed) resolve()
    else socket.once('close', () => resolve())
    socket.destroy()
  }))
  await Promise.all(closing)
}

interface StreamParams { port: number, bytes: number, type: UpgradeType, timeoutMs: number }

/**
 * One tunnel; the upstream writes `bytes` of payload one way (upstream → client) as fast as they are
 * read — for WebSocket in 64 KiB frames, so a little more on the wire (`sourceWireBytes`). The client
 * counts wire bytes, checks they are exactly that, and reports the payload. The stream is complete at
 * the upstream's end, or, for WebSocket, at a close frame right after the last data byte: a frame relay
 * (`@fastify/http-proxy`) turns the upstream's end into a close frame and waits for the client's answer.
 */
async function stream (p: StreamParams): Promise<{ bytes: number, wallMs: number, cpuMicros: number }> {
  const cpu0 = process.cpuUsage()
  const start = performance.now()
  const deadline = Date.now() + p.timeoutMs
  const wire = sourceWireBytes(p.type, p.bytes)
  const { socket, rest } = await handshake(p.port, upgradeRequest(p.type, p.port, `m=source&n=${p.bytes}`), deadline)
  await new Promise<void>((resolve, reject) => {
    let got = 0
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      socket.removeAllListeners('data')
      socket.removeAllListeners('end')
      socket.removeAllListeners('close')
      socket.destroy()
      if (err === undefined) resolve()
      else reject(err)
    }
    const timer = setTimeout(() => finish(new Error(`stream timed out at ${got} of ${wire} wire bytes`)), Math.max(1, deadline - Date.now()))
    const onData = (chunk: Buffer): void => {
      const before = got
      got += chunk.length
      if (got <= wire) return
      // The first byte past the data: 0x88 is FIN + close (RFC 6455 §5.5.1), the relay's goodbye.
      if (p.type === 'websocket' && before <= wire && chunk[wire - before] === 0x88) finish()
      else if (before <= wire) finish(new Error(`stream sent more than ${wire} wire bytes`))
    }
    socket.on('data', onData)
    socket.once('end', () => finish(got === wire ? undefined : new Error(`stream ended at ${got} of ${wire} wire bytes`)))
    socket.once('close', () => finish(new Error(`stream closed at ${got} of ${wire} wire bytes`)))
    if (rest.length > 0) onData(rest)
  })
  const cpu = process.cpuUsage(cpu0)
  return { bytes: p.bytes, wallMs: performance.now() - start, cpuMicros: cpu.user + cpu.system }
}

interface HandshakeParams {
  port: number
  count: number
  concurrency: number
  type: UpgradeType
  timeoutMs: number
  /** Also time each handshake (connect to the 101) and return percentiles. */
  latencies?: boolean
}

/** Handshake latency percentiles, ms. */
export interface Latencies { p50: number, p90: number, p99: number, max: number }

/** `count` tunnels opened (up to the 101) and closed at once, `concurrency` at a time. */
async function handshakes (p: HandshakeParams): Promise<{ count: number, wallMs: number, cpuMicros: number, latencies?: Latencies }> {
  const request = upgradeRequest(p.type, p.port)
  const deadline = Date.now() + p.timeoutMs
  const times = p.latencies === true ? new Float64Array(p.count) : null
  const cpu0 = process.cpuUsage()
  const start = performance.now()
  let count = 0
  await bounded(p.count, p.concurrency, async (i) => {
    const t0 = times !== null ? performance.now() : 0
    const { socket } = await handshake(p.port, request, deadline)
    if (times !== null) times[i] = performance.now() - t0
    socket.destroy()
    count++
  })
  const cpu = process.cpuUsage(cpu0)
  const result = { count, wallMs: performance.now() - start, cpuMicros: cpu.user + cpu.system }
  if (times === null) return result
  times.sort()
  const at = (q: number): number => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)]
  return { ...result, latencies: { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: times[times.length - 1] } }
}

serveRpc({
  open,
  echo,
  closeAll,
  stream,
  handshakes,
  sample: ({ gc }: { gc: boolean }) => sampleSelf(gc),
  close: closeAll
})
announceReady(0)
