import type { RouteOptions } from 'fastify'
import type { SwitchyardRouteOptions } from '@switchyard/core'
import {
  SwyWstcpMirrorError, SwyWstcpNoUpstreamError, SwyWstcpRateLimitError, SwyWstcpRedirectError,
  SwyWstcpRetriesError, SwyWstcpTimeoutError
} from './errors.js'

type LegacyRoute = RouteOptions & SwitchyardRouteOptions & { config?: { rateLimit?: unknown } }

/**
 * The route features Envoy never supported on `use_websocket` routes, checked when such a route is
 * added: "redirects, timeouts, retries, rate limits and shadowing are not supported for WebSocket
 * routes" (the reference, "Old style WebSocket support"). Returns one error per refused feature.
 * `upstream.idleTimeout` (Envoy's `websocket_config.idle_timeout`) is supported and not refused.
 */
export function checkLegacyRoute (route: LegacyRoute): Error[] {
  if (route.useWebsocket !== true) return []
  const where = `${Array.isArray(route.method) ? route.method.join(',') : route.method} ${route.url}`
  const errors: Error[] = []
  if (route.upstream === undefined) errors.push(new SwyWstcpNoUpstreamError(where, 'upstream'))
  if (route.redirect !== undefined) errors.push(new SwyWstcpRedirectError(where, 'redirect'))
  if (route.upstream?.timeout !== undefined) errors.push(new SwyWstcpTimeoutError(where, 'upstream.timeout'))
  if (route.upstream?.retries !== undefined) errors.push(new SwyWstcpRetriesError(where, 'upstream.retries'))
  if (route.upstream?.mirror !== undefined) errors.push(new SwyWstcpMirrorError(where, 'upstream.mirror'))
  // @fastify/rate-limit reads a route's `config.rateLimit`; `false` switches it off, which is allowed.
  const rateLimit = route.config?.rateLimit
  if (rateLimit !== undefined && rateLimit !== false) errors.push(new SwyWstcpRateLimitError(where, 'config.rateLimit'))
  return errors
}
