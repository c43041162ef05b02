import { createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Listen, ListenOptions, ProxyMode } from './mode.ts'

/**
 * `http-proxy` (node-http-proxy 1.18) with `ws: true` on a plain `node:http` server: on `'upgrade'` it
 * re-sends the request upstream and, on the 101, pipes the two sockets (a raw pipe after the handshake).
 */
export const mode: ProxyMode = {
  name: 'node-http-proxy',
  description: 'node:http + http-proxy 1.18 `ws: true` (`proxy.ws(req, socket, head)`: re-sent head, then a socket pipe)',
  order: 51,
  start: (host, upstream) => host.fork(import.meta.url, 'listen', { upstreamPort: upstream.port })
}

export const listen: Listen = async (options: ListenOptions) => {
  const { default: httpProxy } = await import('http-proxy')
  const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${Number(options.upstreamPort)}`, ws: true })
  const sockets = new Set<Socket>()
  proxy.on('error', (_err, _req, res) => {
    // For an upgrade `res` is the client socket: close it rather than leave it hanging.
    if (typeof (res as Socket).destroy === 'function') (res as Socket).destroy()
  })
  const server = createServer((_req, res) => { res.statusCode = 426; res.end() })
  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    proxy.ws(req, socket, head)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
      proxy.close()
    })
  }
}
