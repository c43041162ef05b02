// The echo upstream, in its own process: answers any HTTP/1.1 upgrade with 101, then by the query:
//   m=echo          returns every byte it receives, verbatim (`socket.pipe(socket)`)
//   m=source&n=N    writes N bytes as fast as the reader takes them, then ends
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { HeadReader, switchingProtocols } from './wire.ts'
import { announceReady, sampleSelf, serveRpc } from './rpc.ts'

const SOURCE_CHUNK = Buffer.alloc(64 * 1024, 0x61)
const sockets = new Set<Socket>()

const server = createServer({ noDelay: true }, (socket) => {
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
})

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
  socket.write(switchingProtocols(type, type.toLowerCase() === 'websocket' ? headers.get('sec-websocket-key') : undefined))
  if (query.get('m') === 'source') {
    source(socket, Number(query.get('n') ?? 0))
    return
  }
  if (rest.length > 0) socket.write(rest)
  socket.pipe(socket)
}

function source (socket: Socket, total: number): void {
  let left = total
  const pump = (): void => {
    while (left > 0) {
      const chunk = left >= SOURCE_CHUNK.length ? SOURCE_CHUNK : SOURCE_CHUNK.subarray(0, left)
      left -= chunk.length
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
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })
  })
  announceReady((server.address() as AddressInfo).port)
})
