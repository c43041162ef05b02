import { createServer } from 'node:http'
import type { Socket } from 'node:net'
import { listenSpliced, splice } from '../lib/splice.ts'
import type { Listen, ListenOptions, ProxyMode } from './mode.ts'

/**
 * A second floor: Node's `http.Server` answers nothing itself; on `'upgrade'` it writes the request
 * head to the upstream and pipes both ways. What core pays for the HTTP parser's socket, isolated.
 */
export const mode: ProxyMode = {
  name: 'http-pipe',
  description: 'node:http server, on `upgrade` the head is re-sent upstream and the sockets piped (floor for an HTTP-parsed socket)',
  order: 2,
  start: (host, upstream) => host.fork(import.meta.url, 'listen', { upstreamPort: upstream.port })
}

export const listen: Listen = async (options: ListenOptions) => {
  const sockets = new Set<Socket>()
  const server = createServer()
  server.on('upgrade', (req, a: Socket, head: Buffer) => {
    const b = splice(a, Number(options.upstreamPort), sockets)
    let raw = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`
    for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`
    b.write(raw + '\r\n')
    if (head.length > 0) b.write(head)
  })
  return listenSpliced(server, sockets)
}
