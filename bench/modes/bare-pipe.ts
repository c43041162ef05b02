import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import type { Listen, ListenOptions, ProxyMode } from './mode.ts'

/** The floor: a `net` server that pipes each connection to the upstream, upgrade bytes included, blindly. */
export const mode: ProxyMode = {
  name: 'bare-pipe',
  description: 'net server, per connection `a.pipe(b); b.pipe(a)` to the upstream (the floor, reference for × pipe)',
  order: 1,
  start: (host, upstream) => host.fork(import.meta.url, 'listen', { upstreamPort: upstream.port })
}

export const listen: Listen = async (options: ListenOptions) => {
  const upstreamPort = Number(options.upstreamPort)
  // noDelay on both legs, as Node's http server sets it: a lone small message is never held back.
  const sockets = new Set<Socket>()
  const server = createServer({ noDelay: true }, (a) => {
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
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })
  }
}
