/**
 * The listening and connecting every end-to-end test needs: a server on an ephemeral 127.0.0.1 port torn
 * down with `t.after`, a port nothing listens on, and a bare client socket.
 */
import { once } from 'node:events'
import type http from 'node:http'
import net from 'node:net'
import type { TestContext } from 'node:test'

/** Listens on an ephemeral 127.0.0.1 port; `t.after` destroys its connections and closes it. */
export async function listen (t: TestContext, server: net.Server): Promise<number> {
  const sockets = new Set<net.Socket>()
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    for (const s of sockets) s.destroy()
    ;(server as http.Server).closeAllConnections?.()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as net.AddressInfo).port
}

/** A port free on 127.0.0.1 right now (bound, then released), for an endpoint that refuses or a peer to bind. */
export async function freePort (): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** A bare client socket to 127.0.0.1:`port` (half-open allowed unless told otherwise); `t.after` destroys it. */
export async function connect (t: TestContext, port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? true })
  socket.on('error', () => {})
  t.after(() => { socket.destroy() })
  await once(socket, 'connect')
  return socket
}
