// The echo upstream, in its own process: answers any HTTP/1.1 upgrade with 101, then by the query:
//   m=echo          Upgrade: websocket — answers every client frame with the same payload in an
//                   unmasked server frame (lib/frame-echo.ts), so the traffic is valid RFC 6455 both ways;
//                   any other type — returns every byte it receives, verbatim (`socket.pipe(socket)`)
//   m=source&n=N    writes N payload bytes as fast as the reader takes them, then ends: for WebSocket
//                   as unmasked binary frames of SOURCE_FRAME_PAYLOAD bytes, otherwise raw
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { FrameEcho } from './frame-echo.ts'
import { HeadReader, SOURCE_FRAME_PAYLOAD, sourceFrame, switchingProtocols } from './wire.ts'
import { announceReady, sampleSelf, serveRpc } from './rpc.ts'

const RAW_SOURCE_CHUNK = Buffer.alloc(SOURCE_FRAME_PAYLOAD, 0x61)
const FRAME_SOURCE_CHUNK = sourceFrame(SOURCE_FRAME_PAYLOAD)
const sockets = new Set<Socket>()

const servers = new Set<Server>()
const server = createServer({ noDelay: true }, onConnection)
servers.add(server)

function onConnection (socket: Socket): void {
  sockets.add(socket)
  socket.once('close', () => sockets.delete(socket))
  socket.on('error', () => socket.destroy())
  const reader = new HeadReader()
  const onData = (chunk: Buffer): void => {
    let parsed
    try {
      parsed = reader.push(chunk)
    } catch {
      socket.destroy()
      return
    }
    if (parsed === null) return
    socket.off('data', onData)
    answer(socket, parsed.head, parsed.rest)
  }
  socket.on('data', onData)
}

/** `count` more listeners with the same behaviour (many-endpoint clusters); resolves to their ports. */
async function listenMore ({ count }: { count: number }): Promise<number[]> {
  const ports: number[] = []
  for (let i = 0; i < count; i++) {
    const extra = createServer({ noDelay: true }, onConnection)
    servers.add(extra)
    await new Promise<void>((resolve) => extra.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve))
    ports.push((extra.address() as AddressInfo).port)
  }
  return ports
}

function answer (socket: Socket, head: string, rest: Buffer): void {
  const lines = head.split('\r\n')
  const target = lines[0].split(' ')[1] ?? ''
  const headers = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  const type = headers.get('upgrade')
  if (type === undefined) {
    socket.end('HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    return
  }
  const query = new URLSearchParams(target.slice(target.indexOf('?') + 1))
  const websocket = type.toLowerCase() === 'websocket'
  socket.write(switchingProtocols(type, websocket ? headers.get('sec-websocket-key') : undefined))
  if (query.get('m') === 'source') {
    source(socket, Number(query.get('n') ?? 0), websocket)
    return
  }
  if (!websocket) {
    if (rest.length > 0) socket.write(rest)
    socket.pipe(socket)
    return
  }
  const frames = new FrameEcho((prefix, body) => {
    if (prefix !== null) {
      socket.cork()
      socket.write(prefix)
    }
    const flushed = body !== null ? socket.write(body) : true
    if (prefix !== null) socket.uncork()
    if (!flushed && !socket.isPaused()) {
      socket.pause()
      socket.once('drain', () => socket.resume())
    }
  })
  socket.on('data', (chunk: Buffer) => frames.push(chunk))
  if (rest.length > 0) frames.push(rest)
}

/** Writes `total` payload bytes: raw, or (WebSocket) in unmasked binary frames of SOURCE_FRAME_PAYLOAD bytes. */
function source (socket: Socket, total: number, websocket: boolean): void {
  let left = total
  const pump = (): void => {
    while (left > 0) {
      const payload = Math.min(left, SOURCE_FRAME_PAYLOAD)
      const chunk = !websocket
        ? RAW_SOURCE_CHUNK.subarray(0, payload)
        : payload === SOURCE_FRAME_PAYLOAD ? FRAME_SOURCE_CHUNK : sourceFrame(payload)
      left -= payload
      if (!socket.write(chunk)) {
        socket.once('drain', pump)
        return
      }
    }
    socket.end()
  }
  socket.resume()
  pump()
}

server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  serveRpc({
    sample: ({ gc }: { gc: boolean }) => sampleSelf(gc),
    listenMore,
    close: async () => {
      const closing = [...servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve())))
      for (const socket of sockets) socket.destroy()
      await Promise.all(closing)
    }
  })
  announceReady((server.address() as AddressInfo).port)
})
