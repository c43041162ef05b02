import type { FastifyInstance } from 'fastify'
import { appStateOf } from '@switchyard/core/internal'
import type { Counters } from './counters.ts'

/** A cluster of a node the page shows: `view` names it on the page (`sidecar → app`). */
export interface ClusterView {
  view: string
  cluster: string
  /** Endpoint address → what the page calls it (`app-1`); the address otherwise. */
  labels?: ReadonlyMap<string, string>
}

/**
 * The clusters' endpoints as counters the live view sums like the others (several front processes
 * each report theirs): `endpoint|<view>|<label>|<address>|<health>` is 1 per node that sees the endpoint
 * in that health (healthy, unhealthy, ejected, pending), `…|tunnels` its open streams (tunnels and plain
 * requests in flight). Read from the cluster objects core keeps (`appStateOf(app).clusters`): their hosts
 * and the streams registered on each.
 */
export function clusterCounters (app: FastifyInstance, views: readonly ClusterView[]): Counters {
  const out: Counters = {}
  const clusters = appStateOf(app)?.clusters
  for (const v of views) {
    for (const host of clusters?.get(v.cluster)?.hosts() ?? []) {
      const key = `endpoint|${v.view}|${v.labels?.get(host.address) ?? host.address}|${host.address}`
      out[`${key}|${host.health}`] = 1
      out[`${key}|tunnels`] = host.streams.size
    }
  }
  return out
}

/** Calls `onChange` after every health or membership change of the viewed clusters; returns the unsubscribe. */
export function watchClusters (app: FastifyInstance, views: readonly ClusterView[], onChange: () => void): () => void {
  const clusters = appStateOf(app)?.clusters
  const watched = views.map((v) => clusters?.get(v.cluster)).filter((c) => c !== undefined)
  for (const c of watched) c.on('change', onChange)
  return () => { for (const c of watched) c.off('change', onChange) }
}
