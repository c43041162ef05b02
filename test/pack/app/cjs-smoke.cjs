// Run by pack.test.ts inside the fresh app: the four packages through CommonJS `require()` (Node ≥ 20.19
// loads ES modules synchronously), registered on a Fastify app that must become ready.
'use strict'
const Fastify = require('fastify')
const core = require('@switchyard/core')
const internal = require('@switchyard/core/internal')
const websocketTcp = require('@switchyard/websocket-tcp')
const h2Connect = require('@switchyard/h2-connect')
const filters = require('@switchyard/filters')

async function main () {
  const app = Fastify()
  await app.register(core.default, {
    clusters: { chat: { endpoints: ['127.0.0.1:9'] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    filters: [filters.createAccessLogFilter()]
  })
  await app.register(websocketTcp.default)
  await app.register(h2Connect.default)
  app.get('/chat', { upstream: { cluster: 'chat' } }, core.proxy)
  await app.ready()
  const result = {
    proxy: typeof core.proxy,
    defineError: typeof internal.defineError,
    errorCode: new core.errors.SwyFilterError('f', 'x').code,
    h2ErrorCode: new h2Connect.errors.SwyH2OptionsError('o', 'x').code,
    stats: typeof app.switchyard.stats
  }
  await app.close()
  process.stdout.write(JSON.stringify(result) + '\n')
}
main().catch((err) => { process.stderr.write(String(err && err.stack) + '\n'); process.exit(1) })
