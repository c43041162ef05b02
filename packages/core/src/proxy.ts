import type { FastifyReply, FastifyRequest } from 'fastify'
import { kEngine, kRouteState, kSwitchyard } from './symbols.js'
import type { CoreHolder, RouteState } from './core.js'
import { PlainStream } from './plain-stream.js'
import { SwyRouteOptionsError } from './errors.js'

/**
 * Route handler: sends a plain request to the route's `upstream` through the default filter chain
 * (built on `@fastify/reply-from`). Upgrades on such a route are tunnelled before a handler runs.
 */
export function proxy (this: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const route = (request as unknown as Record<symbol, RouteState | undefined>)[kRouteState]
  const holder = (request.server as unknown as Record<symbol, CoreHolder | undefined>)[kSwitchyard]
  if (route?.upstream === undefined || holder === undefined) {
    throw new SwyRouteOptionsError(`${request.method} ${request.routeOptions.url ?? request.url}`, 'upstream', 'the proxy handler needs an upstream on its route and @switchyard/core registered')
  }
  if (request.raw.rawHeaders.length / 2 > holder.core.maxRequestHeaders) {
    return reply.code(431).header('connection', 'close').send()
  }
  new PlainStream(holder.core, holder[kEngine], route, request, reply, holder.core.filters).start()
  return reply
}
