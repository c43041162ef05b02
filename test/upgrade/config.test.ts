import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy, type Filter, type UpgradeConfig, type RouteUpgradeConfig } from '@switchyard/core'
import { startProxy, cluster, stat } from '../helpers/start-proxy.ts'
import { rawUpgradeEcho } from '../helpers/echo-upstream.ts'
import { rawClient, upgradeHead, requestHead, parseHead } from '../helpers/raw-client.ts'

interface Row {
  plugin: 'enabled' | 'disabled' | 'absent'
  route: 'enabled' | 'disabled' | 'absent'
  allowed: boolean
}

// Envoy's truth table (connection manager upgrade_configs × route upgrade_configs).
const table: Row[] = [
  { plugin: 'enabled', route: 'absent', allowed: true },
  { plugin: 'enabled', route: 'enabled', allowed: true },
  { plugin: 'enabled', route: 'disabled', allowed: false },
  { plugin: 'disabled', route: 'enabled', allowed: true },
  { plugin: 'disabled', route: 'absent', allowed: false },
  { plugin: 'disabled', route: 'disabled', allowed: false },
  { plugin: 'absent', route: 'enabled', allowed: true },
  { plugin: 'absent', route: 'absent', allowed: false },
  { plugin: 'absent', route: 'disabled', allowed: false }
]

for (const row of table) {
  test(`${row.allowed ? 'tunnels' : 'refuses with 403'} a foo upgrade when the plugin entry is ${row.plugin} and the route entry is ${row.route}`, async (t) => {
    const upstream = await rawUpgradeEcho(t)
    const upgradeConfigs: UpgradeConfig[] = row.plugin === 'absent' ? [] : [{ upgradeType: 'foo', enabled: row.plugin === 'enabled' }]
    const routeConfigs: RouteUpgradeConfig[] | undefined = row.route === 'absent' ? undefined : [{ upgradeType: 'foo', enabled: row.route === 'enabled' }]
    const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs }, (app) => {
      app.get('/foo', { upstream: { cluster: 'foo' }, ...(routeConfigs === undefined ? {} : { upgradeConfigs: routeConfigs }) }, proxy)
    })
    const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
    if (row.allowed) {
      client.socket.write('ping')
      const head = await client.headAnd(4)
      assert.equal(head.status, 101)
      assert.equal(head.rest.toString(), 'ping')
      assert.equal(stat(app, 'downstream_rq_ws_on_non_ws_route'), 0)
      assert.equal(upstream.connections, 1)
    } else {
      await client.done
      const head = parseHead(client.received)
      assert.ok(head !== null, 'no response head before close')
      assert.equal(head.status, 403)
      assert.equal(head.headers.connection, 'close')
      assert.equal(head.rest.length, 0)
      assert.ok(head.headers['content-length'] === undefined || head.headers['content-length'] === '0')
      assert.equal(stat(app, 'downstream_rq_ws_on_non_ws_route'), 1)
      assert.equal(upstream.connections, 0)
    }
  })
}

test('a route upgrade config that names only the type enables it, as Envoy\'s route-level enabled defaults to true', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) } }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' }, upgradeConfigs: [{ upgradeType: 'foo' }] }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  client.socket.write('ping')
  const head = await client.headAnd(4)
  assert.equal(head.status, 101)
  assert.equal(head.rest.toString(), 'ping')
})

test('answers 403 with an empty body to a WebSocket upgrade on a route without it, closes the connection and counts it', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  // A second request pipelined behind the refused upgrade must never be served (anti-smuggling).
  const client = await rawClient(t, port, upgradeHead('/foo', 'websocket', { 'Sec-WebSocket-Version': 13, 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' }) +
    requestHead('GET', '/foo', { Host: 'front.example' }))
  await client.done
  const text = client.received.toString('latin1')
  assert.match(text, /^HTTP\/1\.1 403 /)
  assert.equal(text.match(/HTTP\/1\.1/g)?.length, 1, 'the pipelined request was answered')
  assert.equal(parseHead(client.received)!.rest.length, 0)
  assert.equal(stat(app, 'downstream_rq_ws_on_non_ws_route'), 1)
  assert.equal(upstream.connections, 0)
})

test('answers 404 to an upgrade that matches no route', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/nowhere', 'foo'))
  const head = await client.head()
  assert.equal(head.status, 404)
  assert.equal(head.headers.connection, 'close')
  await client.done
  assert.equal(upstream.connections, 0)
  assert.equal(stat(app, 'downstream_rq_ws_on_non_ws_route'), 0)
})

test('matches upgrade types case-insensitively between the request, the plugin and the route', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'WebSocket' }, { upgradeType: 'FOO', enabled: false }] }, (app) => {
    app.get('/ws', { upstream: { cluster: 'c' } }, proxy)
    app.get('/foo', { upstream: { cluster: 'c' }, upgradeConfigs: [{ upgradeType: 'Foo', enabled: true }] }, proxy)
  })
  const ws = await rawClient(t, port, upgradeHead('/ws', 'WEBSOCKET', { 'Sec-WebSocket-Version': 13, 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' }))
  assert.equal((await ws.head()).status, 101)
  const foo = await rawClient(t, port, upgradeHead('/foo', 'fOo'))
  assert.equal((await foo.head()).status, 101)
})

for (const connection of ['keep-alive, Upgrade', 'UPGRADE', 'Upgrade,keep-alive', 'close ,  upgrade']) {
  test(`detects an upgrade whose Connection header is "${connection}"`, async (t) => {
    const upstream = await rawUpgradeEcho(t)
    const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
      app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
    })
    const client = await rawClient(t, port, `GET /foo HTTP/1.1\r\nHost: front.example\r\nConnection: ${connection}\r\nUpgrade: foo\r\n\r\nhi`)
    const head = await client.headAnd(2)
    assert.equal(head.status, 101)
    assert.equal(head.rest.toString(), 'hi')
  })
}

test('serves a request with an Upgrade header but no upgrade Connection token as a plain request', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, 'GET /foo HTTP/1.1\r\nHost: front.example\r\nConnection: keep-alive\r\nUpgrade: foo\r\n\r\n')
  const head = await client.head()
  assert.equal(head.status, 200)
  assert.equal(stat(app, 'downstream_cx_upgrades_total'), 0)
})

test('gives a route that enables a type the plugin does not list the default filter chain', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const seen: Array<string | null> = []
  const recorder: Filter = { name: 'recorder', onRequestHeaders (ctx) { seen.push(ctx.upgradeType) } }
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, filters: [recorder] }, (app) => {
    app.get('/bar', { upstream: { cluster: 'foo' }, upgradeConfigs: [{ upgradeType: 'bar', enabled: true }] }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/bar', 'Bar'))
  assert.equal((await client.head()).status, 101)
  assert.deepEqual(seen, ['bar'])
})

test('tunnels an upgrade with any method, here PUT', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.put('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo', {}, 'PUT'))
  assert.equal((await client.head()).status, 101)
  assert.match(upstream.heads[0]!, /^PUT \/foo HTTP\/1\.1/)
})

test('compares the whole Upgrade value, so a list of protocols matches no configured type', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }, { upgradeType: 'bar' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo, bar'))
  await client.done
  assert.equal(parseHead(client.received)?.status, 403)
  assert.equal(upstream.connections, 0)
  assert.equal(stat(app, 'downstream_rq_ws_on_non_ws_route'), 1)
})
