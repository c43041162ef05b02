import type { FastifyInstance } from 'fastify'
import type { Meter } from './meter-filter.ts'

/**
 * One node's counters, flat and additive: the live view of several front processes is the sum of
 * theirs, key by key. Keys: `fronts`, `draining`; `active.{h2,legacy,sidecar}`;
 * `bytes.{h1,h2,legacy}.{up,down}`; `upgrades.<type>` and `upgrades.legacy`; `refused.<status>`.
 */
export type Counters = Record<string, number>

/** Legacy tunnels run no filter: their bytes are added when each one closes. */
export interface LegacyBytes { up: number, down: number }

export interface FrontState {
  meter: Meter
  legacy: LegacyBytes
  /** Upgrades refused outside the filter chain, by status: 401/403 from the legacy route's hook. */
  refused: Counters
  draining: boolean
}

export function frontCounters (app: FastifyInstance, state: FrontState): Counters {
  const stats = app.switchyard.stats()
  const out: Counters = {
    fronts: 1,
    draining: state.draining ? 1 : 0,
    'active.h2': stats.downstream_cx_upgrades_active ?? 0,
    'active.legacy': stats.downstream_cx_websocket_active ?? 0,
    'bytes.h1.up': state.meter.bytesUp,
    'bytes.h1.down': state.meter.bytesDown,
    'bytes.legacy.up': state.legacy.up,
    'bytes.legacy.down': state.legacy.down,
    'upgrades.legacy': stats.downstream_cx_websocket_total ?? 0
  }
  for (const [name, value] of Object.entries(stats)) {
    const type = /^upgrade\.(.+)\.downstream_cx_upgrades_total$/.exec(name)?.[1]
    if (type !== undefined) out[`upgrades.${type}`] = value
  }
  const refused: Counters = { ...state.meter.refused }
  // A type the route does not enable is refused by core before the chain: Envoy's 403 and counter.
  add(refused, '403', stats.downstream_rq_ws_on_non_ws_route ?? 0)
  // The drain's 503s, to new upgrades, CONNECTs and plain requests.
  add(refused, '503', stats.downstream_rq_drain_refused ?? 0)
  for (const [status, n] of Object.entries(state.refused)) add(refused, status, n)
  for (const [status, n] of Object.entries(refused)) if (n > 0) out[`refused.${status}`] = n
  return out
}

export function sidecarCounters (app: FastifyInstance, meter: Meter): Counters {
  return {
    'active.sidecar': app.switchyard.stats().downstream_cx_upgrades_active ?? 0,
    'bytes.h2.up': meter.bytesUp,
    'bytes.h2.down': meter.bytesDown
  }
}

/** Key-by-key sum. */
export function sumCounters (all: Iterable<Counters>): Counters {
  const out: Counters = {}
  for (const counters of all) for (const [key, n] of Object.entries(counters)) add(out, key, n)
  return out
}

function add (into: Counters, key: string, n: number): void {
  into[key] = (into[key] ?? 0) + n
}
