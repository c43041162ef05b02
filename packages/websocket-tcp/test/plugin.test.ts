import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import switchyard, { proxy, type SwitchyardRouteOptions } from '@switchyard/core'
import websocketTcp from '../src/index.ts'

async function readyWith (route: SwitchyardRouteOptions & { config?: Record<string, unknown> }, plugin: Record<string, unknown> = {}): Promise<Error | undefined> {
  const app = Fastify()
  try {
    await app.register(switchyard, { clusters: { c: { endpoints: ['127.0.0.1:1'] }, d: { endpoints: ['127.0.0.1:2'] } } })
    await app.register(websocketTcp, plugin)
    app.get('/chat', route, proxy)
    await app.ready()
    return undefined
  } catch (err) {
    return err as Error
  } finally {
    await app.close().catch(() => {})
  }
}

const refused: Array<[string, SwitchyardRouteOptions & { config?: Record<string, unknown> }, string, RegExp]> = [
  ['a redirect', { useWebsocket: true, upstream: { cluster: 'c' }, redirect: { pathRedirect: '/elsewhere' } }, 'SWY_ERR_WSTCP_REDIRECT', /redirect/],
  ['a route timeout', { useWebsocket: true, upstream: { cluster: 'c', timeout: 1000 } }, 'SWY_ERR_WSTCP_TIMEOUT', /upstream\.timeout/],
  ['retries', { useWebsocket: true, upstream: { cluster: 'c', retries: { numRetries: 2 } } }, 'SWY_ERR_WSTCP_RETRIES', /upstream\.retries/],
  ['a rate limit', { useWebsocket: true, upstream: { cluster: 'c' }, config: { rateLimit: { max: 10, timeWindow: 1000 } } }, 'SWY_ERR_WSTCP_RATE_LIMIT', /config\.rateLimit/],
  ['shadowing', { useWebsocket: true, upstream: { cluster: 'c', mirror: { cluster: 'd' } } }, 'SWY_ERR_WSTCP_MIRROR', /upstream\.mirror/],
  ['no upstream', { useWebsocket: true }, 'SWY_ERR_WSTCP_NO_UPSTREAM', /upstream/]
]

for (const [what, route, code, field] of refused) {
  test(`fails app.ready() with ${code} when a useWebsocket route has ${what}`, async () => {
    const err = await readyWith(route)
    assert.equal((err as Error & { code?: string })?.code, code)
    assert.match(err!.message, /GET \/chat/)
    assert.match(err!.message, field)
  })
}

test('accepts upstream.idleTimeout, rewrites, traffic splitting and a rate limit switched off on a legacy route', async () => {
  const err = await readyWith({
    useWebsocket: true,
    config: { rateLimit: false },
    upstream: { weightedClusters: [{ cluster: 'c', weight: 1 }, { cluster: 'd', weight: 1 }], idleTimeout: 5000, prefixRewrite: '/x/', hostRewrite: 'h', autoHostRewrite: false }
  })
  assert.equal(err, undefined)
})

test('leaves the refused features alone on routes without useWebsocket', async () => {
  assert.equal(await readyWith({ upstream: { cluster: 'c', timeout: 1000, retries: { numRetries: 1 }, mirror: { cluster: 'd' } } }), undefined)
})

test('refuses an unknown or mistyped plugin option with SWY_ERR_WSTCP_OPTIONS', async () => {
  const unknown = await readyWith({ upstream: { cluster: 'c' } }, { trustUpstrem: true })
  assert.equal((unknown as Error & { code?: string })?.code, 'SWY_ERR_WSTCP_OPTIONS')
  const mistyped = await readyWith({ upstream: { cluster: 'c' } }, { trustUpstream: 'yes' })
  assert.equal((mistyped as Error & { code?: string })?.code, 'SWY_ERR_WSTCP_OPTIONS')
})

test('needs @switchyard/core registered first', async () => {
  const app = Fastify()
  await assert.rejects(async () => { await app.register(websocketTcp); await app.ready() }, /@switchyard\/core/)
  await app.close().catch(() => {})
})

test('without the plugin, core refuses a useWebsocket route with SWY_ERR_WEBSOCKET_TCP_MISSING', async () => {
  const app = Fastify()
  await app.register(switchyard, { clusters: { c: { endpoints: ['127.0.0.1:1'] } } })
  app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  await assert.rejects(app.ready(), { code: 'SWY_ERR_WEBSOCKET_TCP_MISSING' })
  await app.close().catch(() => {})
})

test('refuses a host or prefix rewrite that would split the raw request head', async () => {
  const err = await readyWith({ useWebsocket: true, upstream: { cluster: 'c', hostRewrite: 'a\r\nX-Evil: 1' } })
  assert.equal((err as Error & { code?: string })?.code, 'SWY_ERR_ROUTE_OPTIONS')
  assert.match(err!.message, /upstream\.hostRewrite/)
})
