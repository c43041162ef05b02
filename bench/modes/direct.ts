import type { ProxyMode } from './mode.ts'

/** No proxy: the client dials the echo upstream. The reference for the "× direct" columns. */
export const mode: ProxyMode = {
  name: 'direct',
  description: 'client → upstream, no proxy (reference for × direct)',
  order: 0,
  start: async (_host, upstream) => upstream
}
