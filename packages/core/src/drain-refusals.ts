import type { Server, IncomingMessage, ServerResponse } from 'node:http'
import type { Stats } from './stats.js'

/** Counted for every 503 a drain answers: a new upgrade, CONNECT or plain request after `app.close()` began. */
export const DRAIN_REFUSED = 'downstream_rq_drain_refused'

/**
 * Counts the 503s Fastify answers plain requests with while the server drains (`return503OnClosing`);
 * core counts its own refusals of upgrades and CONNECTs where it writes them. Returns the detacher.
 */
export function countDrainRefusals (server: Server, stats: Stats): () => void {
  const onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
    res.once('finish', () => { if (res.statusCode === 503) stats.inc(DRAIN_REFUSED) })
  }
  server.prependListener('request', onRequest)
  return () => { server.removeListener('request', onRequest) }
}
