import { listen as httpPipe } from './http-pipe.ts'
import type { Listen, ListenOptions, ProxyMode } from './mode.ts'

/**
 * The http-pipe floor in a process that has also loaded Fastify and @switchyard/core (unused): the same
 * code path as http-pipe with the JS heap of a Fastify proxy. Large messages cost more CPU here than in
 * the bare pipe only because of V8's garbage collector (external-memory pressure from each read's Buffer
 * triggers mark-compacts whose cost grows with the heap), which isolates what the tunnel itself costs.
 */
export const mode: ProxyMode = {
  name: 'loaded-pipe',
  description: 'http-pipe in a process that has loaded Fastify and @switchyard/core (a pipe with a Fastify-sized heap)',
  order: 3,
  start: (host, upstream) => host.fork(import.meta.url, 'listen', { upstreamPort: upstream.port })
}

export const listen: Listen = async (options: ListenOptions) => {
  // Loaded, never used: only the heap grows.
  await import('fastify')
  await import('@switchyard/core')
  return httpPipe(options)
}
