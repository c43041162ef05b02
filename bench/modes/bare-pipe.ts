import { createServer, type Socket } from 'node:net'
import { listenSpliced, splice } from '../lib/splice.ts'
import type { Listen, ListenOptions, ProxyMode } from './mode.ts'

/** The floor: a `net` server that pipes each connection to the upstream, upgrade bytes included, blindly. */
export const mode: ProxyMode = {
  name: 'bare-pipe',
  description: 'net server, per connection `a.pipe(b); b.pipe(a)` to the upstream (the floor, reference for × pipe)',
  order: 1,
  start: (host, upstream) => host.fork(import.meta.url, 'listen', { upstreamPort: upstream.port })
}

export const listen: Listen = async (options: ListenOptions) => {
  const sockets = new Set<Socket>()
  // noDelay on both legs, as Node's http server sets it: a lone small message is never held back.
  const server = createServer({ noDelay: true }, (a) => { splice(a, Number(options.upstreamPort), sockets) })
  return listenSpliced(server, sockets)
}
