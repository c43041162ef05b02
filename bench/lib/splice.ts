import { connect, type AddressInfo, type Server, type Socket } from 'node:net'

/**
 * The floors' pipe: dials the upstream and joins the two sockets with `a.pipe(b); b.pipe(a)`, an error or
 * close on either side destroying the other. `noDelay` on the upstream leg, as Node's HTTP server sets it
 * on accepted sockets: a lone small message is never held back. Returns the upstream socket.
 */
export function splice (a: Socket, upstreamPort: number, sockets: Set<Socket>): Socket {
  const b = connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true })
  sockets.add(a).add(b)
  a.once('close', () => sockets.delete(a))
  b.once('close', () => sockets.delete(b))
  a.pipe(b)
  b.pipe(a)
  a.on('error', () => b.destroy())
  b.on('error', () => a.destroy())
  a.on('close', () => b.destroy())
  b.on('close', () => a.destroy())
  return b
}

/** Listens on loopback; `close` stops the server and destroys every spliced socket. */
export async function listenSpliced (server: Server, sockets: Set<Socket>): Promise<{ port: number, close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })
  }
}
