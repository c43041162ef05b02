import type { SwitchyardRouteOptions } from './route-options.js'
import type { Runtime } from './runtime.js'

/** A cluster as an application sees it (Envoy's EDS without a control plane). */
export interface SwitchyardCluster {
  readonly name: string
  /** Each endpoint with its weight and health (`healthy`, `unhealthy`, `ejected`, or `pending` until its first check). */
  endpoints (): Array<{ address: string, weight: number, health: 'healthy' | 'unhealthy' | 'ejected' | 'pending' }>
  /**
   * Replaces the endpoint list, validated like the options (a bad entry throws `SWY_ERR_CLUSTER_OPTIONS` and
   * changes nothing). A removed endpoint takes no new traffic; its open tunnels stay until they end, or are
   * closed after the cluster's `drainTimeout`. A new endpoint of a health-checked cluster takes traffic after
   * one passing check.
   */
  setEndpoints (endpoints: Array<string | { address: string, weight?: number }>): void
}

/** What `app.switchyard` offers. */
export interface SwitchyardDecorator {
  /** A snapshot of counters and gauges, named as Envoy names them. */
  stats (): Record<string, number>
  /** The same stats in Prometheus text format (see `prometheusHandler` to mount them on a route). */
  prometheus (): string
  /** Values read at request time (traffic shifting without a restart). */
  readonly runtime: Runtime
  /** The clusters of the plugin's options, by name. */
  readonly clusters: { get (name: string): SwitchyardCluster | undefined }
}

declare module 'fastify' {
  interface FastifyInstance {
    switchyard: SwitchyardDecorator
  }
  // Route options Switchyard reads in `onRoute` (schemas in route-options.ts are their source).
  interface RouteShorthandOptions extends SwitchyardRouteOptions {}
}
