/**
 * Bad cluster and hash-policy options fail `app.ready()` with a coded error naming the cluster (or
 * route) and the field, through the plugin as an application registers it; a hashing cluster behind a
 * route with no hash policy is a warning logged once, and the requests are still served.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import switchyard, { proxy, type ClusterOptions, type SwitchyardOptions } from '@switchyard/core'
import { captureLogs } from '../helpers/legacy-net.ts'
import { startBackends, tally } from '../helpers/lb-backends.ts'
import { plainGet } from '../helpers/lb-proxy.ts'

const endpoints = ['127.0.0.1:1']
const bad: Array<[string, Partial<ClusterOptions> & Record<string, unknown>, string]> = [
  ['an endpoint weight of 0', { endpoints: [{ address: '127.0.0.1:1', weight: 0 }] }, 'endpoints[0].weight'],
  ['an endpoint weight over 128', { endpoints: ['127.0.0.1:2', { address: '127.0.0.1:1', weight: 129 }] }, 'endpoints[1].weight'],
  ['an unhealthy threshold of 0', { healthCheck: { unhealthyThreshold: 0 } }, 'healthCheck.unhealthyThreshold'],
  ['a healthy threshold of 0', { healthCheck: { healthyThreshold: 0 } }, 'healthCheck.healthyThreshold'],
  ['a health-check interval shorter than its timeout', { healthCheck: { interval: 100, timeout: 200 } }, 'healthCheck.interval'],
  ['a path on a TCP check', { healthCheck: { tcp: true, path: '/x' } }, 'healthCheck.path'],
  ['a consecutive5xx of 0', { outlierDetection: { consecutive5xx: 0 } }, 'outlierDetection.consecutive5xx'],
  ['a maxEjectionPercent over 100', { outlierDetection: { maxEjectionPercent: 150 } }, 'outlierDetection.maxEjectionPercent'],
  ['a negative circuit breaker', { circuitBreakers: { maxRequests: -1 } }, 'circuitBreakers.maxRequests'],
  ['a panic threshold over 100', { healthyPanicThreshold: 101 }, 'healthyPanicThreshold'],
  ['an unknown lbPolicy', { lbPolicy: 'leastConn' as 'random' }, 'lbPolicy'],
  ['ring options on a round-robin cluster', { ringHashLbConfig: { minimumRingSize: 16 } }, 'ringHashLbConfig'],
  ['a maglev table size that is not prime', { lbPolicy: 'maglev', maglevLbConfig: { tableSize: 65536 } }, 'maglevLbConfig.tableSize'],
  ['DNS resolvers on a static cluster', { dnsResolvers: ['127.0.0.1'] }, 'dnsResolvers'],
  ['a misspelt field', { healthChecks: {} }, 'healthChecks']
]

for (const [what, options, field] of bad) {
  test(`app.ready() fails naming the cluster and ${field} for ${what}`, async (t) => {
    const app = Fastify()
    t.after(() => app.close().catch(() => {}))
    await assert.rejects(async () => {
      await app.register(switchyard, { clusters: { chat: { endpoints, ...options } } } as SwitchyardOptions)
      await app.ready()
    }, (err: Error & { code?: string }) => {
      assert.match(err.code ?? '', /^SWY_ERR_(PLUGIN|CLUSTER)_OPTIONS$/, err.message)
      assert.ok(err.message.includes('chat'), `"${err.message}" does not name the cluster`)
      assert.ok(err.message.includes(field), `"${err.message}" does not name ${field}`)
      return true
    })
  })
}

test('a bad route hash policy (a cookie name that is not a token) fails app.ready() naming the route and field', async (t) => {
  const app = Fastify()
  t.after(() => app.close().catch(() => {}))
  await assert.rejects(async () => {
    await app.register(switchyard, { clusters: { chat: { endpoints, lbPolicy: 'ringHash' } } })
    app.get('/room', { upstream: { cluster: 'chat', hashPolicy: [{ cookie: { name: 'bad name', ttl: 1000 } }] } }, proxy)
    await app.ready()
  }, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SWY_ERR_ROUTE_OPTIONS')
    assert.ok(err.message.includes('/room') && err.message.includes('upstream.hashPolicy[0]'), err.message)
    return true
  })
})

test('a ring-hash cluster behind routes with no hash policy logs one warning and serves every request', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 3)
  const logs = captureLogs()
  const app = Fastify({ logger: logs.logger })
  t.after(() => app.close())
  await app.register(switchyard, { clusters: { chat: { endpoints: backends.map((b) => b.address), lbPolicy: 'ringHash' } } })
  app.get('/a', { upstream: { cluster: 'chat' } }, proxy)
  app.get('/b', { upstream: { cluster: 'chat' } }, proxy)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const warnings = logs.lines.filter((l) => l.code === 'SWY_ERR_HASH_POLICY_MISSING')
  assert.equal(warnings.length, 1)
  assert.equal(warnings[0]!.level, 40)
  const answers = []
  for (let i = 0; i < 30; i++) answers.push(await plainGet(port, { path: i % 2 === 0 ? '/a' : '/b' }))
  for (const a of answers) assert.equal(a.status, 200)
  // No hash: a random point on the ring for each request.
  assert.ok(Object.keys(tally(answers.map((a) => a.backend!))).length > 1)
})
