import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { TotalsSource } from './stats-feed.ts'

/**
 * `GET /mesh/events`: Server-Sent Events, one `data:` line of the mesh's totals now and after every
 * change (already coalesced to at most ~10 a second by the nodes). `GET /mesh/stats`: the same as JSON.
 * Open event streams end after the drain, so the page sees the `draining` counter move first.
 */
export function registerLiveView (app: FastifyInstance, totals: TotalsSource): void {
  const open = new Set<ServerResponse>()

  app.get('/mesh/stats', async () => totals.snapshot())
  app.get('/mesh/events', (_request, reply) => {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    const send = (): void => { if (!res.writableEnded) res.write(`data: ${JSON.stringify(totals.snapshot())}\n\n`) }
    send()
    totals.on('change', send)
    open.add(res)
    res.on('close', () => {
      totals.off('change', send)
      open.delete(res)
    })
  })
  // Registered after core's preClose (the drain): streams keep reporting until the tunnels are gone.
  app.addHook('preClose', async () => {
    for (const res of open) res.end()
  })
}
