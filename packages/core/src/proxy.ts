import type { FastifyReply, FastifyRequest } from 'fastify'
import { kRouteState } from './symbols.js'
import { appStateOf } from './app-state.js'
import type { RouteState } from './route-state.js'
import { PlainStream } from './plain-stream.js'
import { SwyRouteOptionsError } from './errors.js'

/**
 * Route handler: sends a plain request to the route's `upstream` through the default filter chain.
 * Upgrades on such a route are tunnelled before a handler runs.
 */
export function proxy (this: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const route = (request as unknown as Record<symbol, RouteState | undefined>)[kRouteState]
  const app = appStateOf(request.server)
  if (route?.upstream === undefined || app === undefined) {
    throw new SwyRouteOptionsError(`${request.method} ${request.routeOptions.url ?? request.url}`, 'upstream', 'the proxy handler needs an upstream on its route and @switchyard/core registered')
  }
  if (request.raw.rawHeaders.length / 2 > app.maxRequestHeaders) {
    return reply.code(431).header('connection', 'close').send()
  }
  new PlainStream(app, route, request, reply, app.filters).start()
  return reply
}
