import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Http2SecureServer, Http2Server } from 'node:http2'
import { appStateOf } from '@switchyard/core/internal'
import { Http2ConnectTransport } from './http2-connect-transport.js'
import { KeyCheckingTransport } from './key-checking-transport.js'
import { createConnectListener } from './extended-connect-listener.js'
import { METHOD_CARRIER } from './connect-headers.js'
import { GeneratedKeys } from './websocket-key.js'
import { ListenerLimits } from './listener-limits.js'
import { checkH2ConnectOptions, DEFAULT_MAX_CONCURRENT_STREAMS, defaultSessionMemory, type H2ConnectOptions } from './plugin-options.js'
import { SwyH2OptionsError } from './errors.js'

const PLUGIN = '@switchyard/h2-connect'

export type { H2ConnectOptions } from './plugin-options.js'

async function h2Connect (fastify: FastifyInstance, options: H2ConnectOptions): Promise<void> {
  const opts = options ?? {}
  const problem = checkH2ConnectOptions(opts)
  if (problem !== null) throw new SwyH2OptionsError(problem.field, problem.reason)
  const preserveMethod = opts.preserveMethod === true
  const maxConcurrentStreams = opts.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS
  const maxSessionMemory = opts.maxSessionMemory ?? defaultSessionMemory(maxConcurrentStreams)
  const core = appStateOf(fastify)
  if (core === undefined) throw new SwyH2OptionsError('(plugin)', '@switchyard/core must be registered first')
  const keys = new GeneratedKeys()

  // Upstream side: `protocol: 'http2'` clusters carry upgrades as extended CONNECT.
  core.registerTransport('http2', new Http2ConnectTransport({ log: core.log, stats: core.stats, preserveMethod, keys }), PLUGIN)
  core.decorateTransport('http1', (http1) => new KeyCheckingTransport(http1, keys, core.log), PLUGIN)

  // The carrier is ours: whatever a client sends under that name is dropped before anything reads it.
  fastify.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.raw.headers[METHOD_CARRIER] !== undefined) stripHeader(request, METHOD_CARRIER)
  })

  // Downstream side: an HTTP/2 server accepts extended CONNECT while the plugin is registered.
  const server = fastify.server as unknown as Http2Server | Http2SecureServer
  if (typeof server.updateSettings === 'function') {
    const onConnect = createConnectListener(core, { preserveMethod, keys })
    // Core still answers an HTTP/1.1 CONNECT on an `allowHTTP1` server beside this listener.
    core.companionConnectListeners.add(onConnect)
    server.on('connect', onConnect)
    // RFC 8441 §3: SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, sent by each side that accepts extended CONNECT.
    server.updateSettings({ enableConnectProtocol: true })
    const limits = new ListenerLimits(server, { maxConcurrentStreams, maxSessionMemory, stats: core.stats, log: core.log })
    limits.attach()
    fastify.addHook('onClose', async () => {
      limits.detach()
      server.removeListener('connect', onConnect)
      server.updateSettings({ enableConnectProtocol: false })
    })
  }
}

function stripHeader (request: FastifyRequest, name: string): void {
  const raw = request.raw
  delete raw.headers[name]
  const rawHeaders = raw.rawHeaders
  for (let i = rawHeaders.length - 2; i >= 0; i -= 2) {
    if (rawHeaders[i]!.toLowerCase() === name) rawHeaders.splice(i, 2)
  }
}

export default fp(h2Connect, { fastify: '5.x', name: PLUGIN, dependencies: ['@switchyard/core'] })
export { h2Connect }
export { Http2ConnectTransport } from './http2-connect-transport.js'
export { Http2Downstream } from './http2-downstream.js'
export { METHOD_CARRIER, toExtendedConnect, acceptedAsUpgrade, toHttp2Response, fromExtendedConnect } from './connect-headers.js'
export { extendedConnectChannel } from './extended-connect-listener.js'
export * as errors from './errors.js'
