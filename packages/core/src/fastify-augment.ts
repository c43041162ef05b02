import type { SwitchyardRouteOptions } from './route-options.js'
import type { Runtime } from './runtime.js'

/** What `app.switchyard` offers. */
export interface SwitchyardDecorator {
  /** A snapshot of counters and gauges, named as Envoy names them. */
  stats (): Record<string, number>
  /** The same stats in Prometheus text format (see `prometheusHandler` to mount them on a route). */
  prometheus (): string
  /** Values read at request time (traffic shifting without a restart). */
  readonly runtime: Runtime
}

declare module 'fastify' {
  interface FastifyInstance {
    switchyard: SwitchyardDecorator
  }
  // Route options Switchyard reads in `onRoute` (schemas in route-options.ts are their source).
  interface RouteShorthandOptions extends SwitchyardRouteOptions {}
}
