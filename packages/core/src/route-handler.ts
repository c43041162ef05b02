import type { FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify'
import type { AppState } from './app-state.js'
import type { RouteState } from './route-state.js'
import type { UpgradeContext } from './downstream.js'
import type { Filter } from './filter/filter.js'
import { UpgradeStream } from './upgrade-stream.js'
import { sendRedirect } from './redirect.js'
import { StreamTimeouts } from './stream-timeouts.js'
import { kRouteState, kUpgrade } from './symbols.js'
import { SwyUpgradeNotAllowedError } from './errors.js'

/**
 * The effective upgrade config of a type on a route (Envoy's truth table): a route entry decides when
 * present; else the connection manager's entry (enabled unless `enabled: false`); else disabled. The
 * chain is the type's own when its connection-manager entry names filters, else the default chain.
 */
export function resolveUpgrade (core: AppState, route: RouteState | undefined, upgradeType: string): { enabled: boolean, filters: Filter[] } {
  const hcm = core.upgradeConfigs.get(upgradeType)
  const routeEnabled = route?.upgradeConfigs.get(upgradeType)
  // h2c is never tunnelled, whatever the configs say (RFC 9113 §3.1; h2c smuggling). The HTTP/1.1 listener
  // strips it; an HTTP/2 extended CONNECT with `:protocol: h2c` arrives here as the type `h2c`.
  const enabled = upgradeType !== 'h2c' && (routeEnabled ?? (hcm !== undefined ? hcm.enabled : false))
  return { enabled, filters: hcm?.filters ?? core.filters }
}

/** Wraps a route's handler: upgrades on a route with `upstream` are tunnelled and never reach it. */
export function wrapHandler (core: AppState, route: RouteState | undefined, handler: RouteHandlerMethod): RouteHandlerMethod {
  return function switchyardRoute (this: unknown, request: FastifyRequest, reply: FastifyReply) {
    ;(request as unknown as Record<symbol, unknown>)[kRouteState] = route
    const upgrade = (request.raw as unknown as Record<symbol, UpgradeContext | undefined>)[kUpgrade]
    if (upgrade !== undefined) return handleUpgrade(core, route, request, reply, upgrade, handler, this)
    if (route?.redirect !== undefined) return sendRedirect(request, reply, route.redirect)
    return handler.call(this as never, request, reply)
  } as RouteHandlerMethod
}

function handleUpgrade (
  core: AppState, route: RouteState | undefined, request: FastifyRequest, reply: FastifyReply,
  upgrade: UpgradeContext, handler: RouteHandlerMethod, instance: unknown
): unknown {
  const { upgradeType, downstream } = upgrade
  // Envoy ≤1.8 `use_websocket`: an HTTP/1.1 WebSocket upgrade becomes a TCP proxy, before any filter.
  const legacy = route?.useWebsocket === true ? core.upgradeMode('useWebsocket') : undefined
  if (legacy !== undefined && upgradeType === 'websocket' && downstream.protocol === 'http1' && request.raw.httpVersion === '1.1') {
    legacy(request, reply, route!, upgrade)
    return reply
  }
  const { enabled, filters } = resolveUpgrade(core, route, upgradeType)
  if (!enabled) {
    // Envoy: 403 with an empty body, and the connection is closed after it (anti-smuggling).
    core.stats.inc('downstream_rq_ws_on_non_ws_route')
    const err = new SwyUpgradeNotAllowedError(upgradeType, route?.url ?? request.url)
    request.log.debug({ code: err.code, upgradeType, route: route?.url }, err.message)
    // HTTP/2 has no Connection header (RFC 9113 §8.2.2); closing the stream is enough there.
    if (downstream.protocol === 'http1') reply.header('connection', 'close')
    return reply.code(403).send()
  }
  if (route?.redirect !== undefined) return sendRedirect(request, reply, route.redirect)
  if (route?.upstream === undefined) return handler.call(instance as never, request, reply)
  reply.hijack()
  const stream = new UpgradeStream(core, route, request, downstream, upgradeType, filters, upgrade.authority)
  StreamTimeouts.of(request.raw)?.adopt(stream)
  stream.start()
  return reply
}
