import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import Type from 'typebox'
import { appStateOf, compileCheck, type AppState, type RouteState, type UpgradeContext, type UpgradeModeHandler } from '@switchyard/core/internal'
import { checkLegacyRoute } from './route-check.js'
import { LegacyConnection, type LegacySettings } from './legacy-connection.js'
import { SwyWstcpOptionsError } from './errors.js'

const PLUGIN = '@switchyard/websocket-tcp'

/** The plugin's options, as data: the single source of their runtime check. */
export const WebsocketTcpOptionsSchema = Type.Object({
  /**
   * Pipe blindly as soon as the upstream connection opens (Envoy ≤1.8), without waiting for its `101`.
   * With `true`, an upstream that refuses the upgrade but keeps its connection open reads whatever the
   * client sends next as HTTP requests: requests can be smuggled past every route, hook and filter.
   */
  trustUpstream: Type.Optional(Type.Boolean()),
  // Fastify's own registration options.
  prefix: Type.Optional(Type.String()),
  logLevel: Type.Optional(Type.String()),
  logSerializers: Type.Optional(Type.Object({}, { additionalProperties: true }))
}, { additionalProperties: false })

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

const checkOptions = compileCheck(WebsocketTcpOptionsSchema)

async function websocketTcp (fastify: FastifyInstance, options: WebsocketTcpOptions): Promise<void> {
  const opts = options ?? {}
  const problem = checkOptions(opts)
  if (problem !== null) throw new SwyWstcpOptionsError(problem.field, problem.reason)
  const app = appStateOf(fastify)
  if (app === undefined) throw new SwyWstcpOptionsError('(plugin)', '@switchyard/core must be registered first')

  const problems: Error[] = []
  fastify.addHook('onRoute', (route: RouteOptions) => {
    problems.push(...checkLegacyRoute(route))
  })
  fastify.addHook('onReady', async () => {
    if (problems.length > 0) throw problems[0]
  })
  app.registerUpgradeMode('useWebsocket', createLegacyHandler(app, { trustUpstream: opts.trustUpstream === true }), PLUGIN)
}

/**
 * The handler core calls for an HTTP/1.1 WebSocket upgrade on a `useWebsocket` route, after its hooks
 * (core leaves HTTP/1.0 and HTTP/2 upgrades to the new-style path, as Envoy took over HTTP/1.1 only).
 */
export function createLegacyHandler (app: AppState, settings: LegacySettings): UpgradeModeHandler {
  return function legacyWebsocket (request: FastifyRequest, reply: FastifyReply, route: RouteState, upgrade: UpgradeContext): void {
    reply.hijack()
    new LegacyConnection(app, settings, request, route, upgrade.downstream).start()
  }
}

export default fp(websocketTcp, { fastify: '5.x', name: PLUGIN, dependencies: ['@switchyard/core'] })
export { websocketTcp }
export * as errors from './errors.js'
