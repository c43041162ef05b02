import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance, type RouteShorthandOptions } from 'fastify'
import switchyard, { proxy, type SwitchyardOptions } from '@switchyard/core'
import websocketTcp from '@switchyard/websocket-tcp'

interface Expected { code: string | RegExp, mentions: string[] }

function matches (expected: Expected) {
  return (err: unknown): boolean => {
    const e = err as { code?: string, message?: string }
    if (typeof expected.code === 'string') assert.equal(e.code, expected.code, `got ${e.code}: ${e.message}`)
    else assert.match(e.code ?? '', expected.code, `got ${e.code}: ${e.message}`)
    for (const m of expected.mentions) assert.ok(e.message?.includes(m), `"${e.message}" does not mention ${m}`)
    return true
  }
}

async function failsReady (t: TestContext, build: (app: FastifyInstance) => Promise<void> | void, expected: Expected): Promise<void> {
  const app = Fastify()
  t.after(() => app.close().catch(() => {}))
  await assert.rejects(async () => { await build(app); await app.ready() }, matches(expected))
}

const clusters = { a: { endpoints: ['127.0.0.1:1'] } }

const badPlugin: Array<[string, unknown, Expected]> = [
  ['a cluster with no endpoint', { clusters: { a: { endpoints: [] } } }, { code: 'SWY_ERR_PLUGIN_OPTIONS', mentions: ['clusters', 'endpoints'] }],
  ['a cluster endpoint that is not host:port or a URL', { clusters: { a: { endpoints: ['ftp://x:1'] } } }, { code: 'SWY_ERR_CLUSTER_OPTIONS', mentions: ['"a"', 'endpoints[0]', 'ftp'] }],
  ['an unknown cluster protocol', { clusters: { a: { endpoints: ['127.0.0.1:1'], protocol: 'spdy' } } }, { code: 'SWY_ERR_PLUGIN_OPTIONS', mentions: ['protocol'] }],
  ['a negative connectTimeout', { clusters: { a: { endpoints: ['127.0.0.1:1'], connectTimeout: -5 } } }, { code: 'SWY_ERR_PLUGIN_OPTIONS', mentions: ['connectTimeout'] }],
  ['an upgrade type that is not a token', { upgradeConfigs: [{ upgradeType: 'web socket' }] }, { code: 'SWY_ERR_PLUGIN_OPTIONS', mentions: ['upgradeType'] }],
  ['an upgrade config enabled flag that is not a boolean', { upgradeConfigs: [{ upgradeType: 'foo', enabled: 'yes' }] }, { code: 'SWY_ERR_PLUGIN_OPTIONS', mentions: ['enabled'] }],
  ['a filter without a name', { filters: [{ onRequestHeaders () {} }] }, { code: 'SWY_ERR_PLUGIN_OPTIONS', mentions: ['filters'] }],
  ['a filter callback that is not a function', { filters: [{ name: 'x', onRequestData: 42 }] }, { code: 'SWY_ERR_PLUGIN_OPTIONS', mentions: ['onRequestData'] }],
  ['duplicate upgrade types differing in case', { upgradeConfigs: [{ upgradeType: 'WebSocket' }, { upgradeType: 'websocket' }] }, { code: 'SWY_ERR_DUPLICATE_UPGRADE_TYPE', mentions: ['websocket'] }],
  ['a misspelt option name', { upgradeConfig: [{ upgradeType: 'websocket' }] }, { code: 'SWY_ERR_PLUGIN_OPTIONS', mentions: ['upgradeConfig'] }]
]

for (const [what, options, expected] of badPlugin) {
  test(`fails app.ready() with ${String(expected.code)} for ${what}`, async (t) => {
    await failsReady(t, (app) => { app.register(switchyard, options as SwitchyardOptions) }, expected)
  })
}

const badRoute: Array<[string, RouteShorthandOptions, Expected]> = [
  ['a negative upstream timeout', { upstream: { cluster: 'a', timeout: -1 } }, { code: 'SWY_ERR_ROUTE_OPTIONS', mentions: ['GET /x', 'upstream.timeout'] }],
  ['an idleTimeout that is not a number', { upstream: { cluster: 'a', idleTimeout: 'soon' as unknown as number } }, { code: 'SWY_ERR_ROUTE_OPTIONS', mentions: ['GET /x', 'idleTimeout'] }],
  ['an unknown upstream field', { upstream: { cluster: 'a', bogus: true } as unknown as RouteShorthandOptions['upstream'] }, { code: 'SWY_ERR_ROUTE_OPTIONS', mentions: ['GET /x', 'bogus'] }],
  ['a prefixRewrite without a leading slash', { upstream: { cluster: 'a', prefixRewrite: 'v2/' } }, { code: 'SWY_ERR_ROUTE_OPTIONS', mentions: ['GET /x', 'prefixRewrite'] }],
  ['a negative cluster weight', { upstream: { weightedClusters: [{ cluster: 'a', weight: -1 }] } }, { code: 'SWY_ERR_ROUTE_OPTIONS', mentions: ['GET /x', 'weight'] }],
  ['an unknown retryOn condition', { upstream: { cluster: 'a', retries: { numRetries: 1, retryOn: ['gateway-error' as '5xx'] } } }, { code: 'SWY_ERR_ROUTE_OPTIONS', mentions: ['GET /x', 'retryOn'] }],
  ['a redirect code that is not a redirect', { redirect: { responseCode: 200 as 301 } }, { code: 'SWY_ERR_ROUTE_OPTIONS', mentions: ['GET /x', 'responseCode'] }],
  ['duplicate route upgrade types differing in case', { upstream: { cluster: 'a' }, upgradeConfigs: [{ upgradeType: 'Foo', enabled: true }, { upgradeType: 'foo', enabled: false }] }, { code: 'SWY_ERR_DUPLICATE_UPGRADE_TYPE', mentions: ['foo'] }],
  ['a cluster that is not configured', { upstream: { cluster: 'nope' } }, { code: 'SWY_ERR_UNKNOWN_CLUSTER', mentions: ['/x', 'nope'] }],
  ['a weighted cluster that is not configured', { upstream: { weightedClusters: [{ cluster: 'a', weight: 1 }, { cluster: 'ghost', weight: 1 }] } }, { code: 'SWY_ERR_UNKNOWN_CLUSTER', mentions: ['/x', 'ghost'] }]
]

for (const [what, routeOptions, expected] of badRoute) {
  test(`fails app.ready() with ${String(expected.code)} naming the route and field for ${what}`, async (t) => {
    await failsReady(t, async (app) => {
      await app.register(switchyard, { clusters })
      app.get('/x', routeOptions, proxy)
    }, expected)
  })
}

test('fails app.ready() with SWY_ERR_WEBSOCKET_TCP_MISSING for useWebsocket without @switchyard/websocket-tcp', async (t) => {
  await failsReady(t, async (app) => {
    await app.register(switchyard, { clusters })
    app.get('/legacy', { useWebsocket: true, upstream: { cluster: 'a' } }, proxy)
  }, { code: 'SWY_ERR_WEBSOCKET_TCP_MISSING', mentions: ['/legacy'] })
})

test('refuses a redirect together with useWebsocket on one route', async (t) => {
  await failsReady(t, async (app) => {
    await app.register(switchyard, { clusters })
    await app.register(websocketTcp)
    app.get('/both', { useWebsocket: true, upstream: { cluster: 'a' }, redirect: { pathRedirect: '/elsewhere' } }, proxy)
  }, { code: /^SWY_ERR_/, mentions: ['/both', 'redirect'] })
})

test('accepts a complete valid configuration', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(switchyard, {
    clusters: { a: { endpoints: ['127.0.0.1:1', 'http://127.0.0.1:2'], connectTimeout: 1000 }, b: { endpoints: ['https://example.test:8443'], protocol: 'http1' } },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo', filters: [], enabled: false }],
    filters: [{ name: 'noop' }]
  })
  app.get('/x', {
    upstream: {
      cluster: 'a',
      weightedClusters: [{ cluster: 'a', weight: 1 }, { cluster: 'b', weight: 3 }],
      runtimeFraction: { runtimeKey: 'k', defaultPercent: 50, fallbackCluster: 'b' },
      prefixRewrite: '/v2/',
      hostRewrite: 'h.example',
      timeout: 1000,
      idleTimeout: 5000,
      retries: { numRetries: 2, retryOn: ['5xx', 'connect-failure', 'reset'] },
      mirror: { cluster: 'b', percent: 10 }
    },
    upgradeConfigs: [{ upgradeType: 'foo', enabled: true }]
  }, proxy)
  app.get('/r', { redirect: { pathRedirect: '/x', hostRedirect: 'h', schemeRedirect: 'https', responseCode: 308 } }, async () => 'x')
  await app.ready()
})
