import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import {
  kSwitchyard,
  type CoreHolder, type LegacyWebsocketHandler, type RouteState, type SwitchyardCore, type UpgradeContext
} from '@switchyard/core'
import { checkLegacyRoute } from './route-check.js'
import { LegacyConnection, type LegacySettings } from './legacy-connection.js'
import { SwyWstcpOptionsError } from './errors.js'

/** Options of `@switchyard/websocket-tcp`. */
export interface WebsocketTcpOptions {
  /**
   * Pipe blindly as soon as the upstream connection opens (Envoy ≤1.8), without waiting for its `101`.
   * Default `false`. With `true`, an upstream that refuses the upgrade but keeps its connection open
   * reads whatever the client sends next as HTTP requests: requests can be smuggled past every route,
   * hook and filter of this server.
   */
  trustUpstream?: boolean
}

async function websocketTcp (fastify: FastifyInstance, options: WebsocketTcpOptions): Promise<void> {
  const opts = options ?? {}
  for (const key of Object.keys(opts)) {
    if (key !== 'trustUpstream') throw new SwyWstcpOptionsError(key, 'unknown option')
  }
  if (opts.trustUpstream !== undefined && typeof opts.trustUpstream !== 'boolean') {
    throw new SwyWstcpOptionsError('trustUpstream', 'must be a boolean')
  }
  const holder = (fastify as unknown as Record<symbol, CoreHolder | undefined>)[kSwitchyard]
  if (holder === undefined) throw new SwyWstcpOptionsError('(plugin)', '@switchyard/core must be registered first')
  const core = holder.core

  const problems: Error[] = []
  fastify.addHook('onRoute', (route: RouteOptions) => {
    problems.push(...checkLegacyRoute(route))
  })
  fastify.addHook('onReady', async () => {
    if (problems.length > 0) throw problems[0]
  })
  core.legacyWebsocket = createLegacyHandler(core, { trustUpstream: opts.trustUpstream === true })
}

/**
 * The handler core calls for an HTTP/1.1 WebSocket upgrade on a `useWebsocket` route, after its hooks
 * (core leaves HTTP/1.0 and HTTP/2 upgrades to the new-style path, as Envoy took over HTTP/1.1 only).
 */
export function createLegacyHandler (core: SwitchyardCore, settings: LegacySettings): LegacyWebsocketHandler {
  return function legacyWebsocket (request: FastifyRequest, reply: FastifyReply, route: RouteState, upgrade: UpgradeContext): void {
    reply.hijack()
    new LegacyConnection(core, settings, request, route, upgrade.downstream).start()
  }
}

export default fp(websocketTcp, { fastify: '5.x', name: '@switchyard/websocket-tcp', dependencies: ['@switchyard/core'] })
export { websocketTcp }
export { checkLegacyRoute } from './route-check.js'
export { buildRequestHead, requestBodyLength } from './request-head.js'
export { parseResponseHead, bodyFraming, closingHead, ChunkedScanner, type ResponseHead, type BodyFraming } from './response-head.js'
export { LegacyConnection, type LegacySettings } from './legacy-connection.js'
export * as errors from './errors.js'
