import { test } from 'node:test'
import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { once } from 'node:events'
import WebSocket from 'ws'
import { proxy } from '@switchyard/core'
import { startProxy, cluster, stat, nextTunnelClose } from '../helpers/start-proxy.ts'
import { rawUpstream, rawUpgradeEcho, wsEchoUpstream, accept, isUpgradeHead } from '../helpers/echo-upstream.ts'
import { rawClient, upgradeHead } from '../helpers/raw-client.ts'
import { freePort } from '../helpers/net.ts'

test('counts upgrades in total, active and per type, with the gauge back at zero when tunnels end', async (t) => {
  const wsUp = await wsEchoUpstream(t)
  const fooUp = await rawUpgradeEcho(t)
  const { app, port, wsUrl } = await startProxy(t, {
    clusters: { ws: cluster(wsUp.port), foo: cluster(fooUp.port) },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo' }]
  }, (app) => {
    app.get('/ws', { upstream: { cluster: 'ws' } }, proxy)
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const ws = new WebSocket(`${wsUrl}/ws`)
  t.after(() => ws.terminate())
  await once(ws, 'open')
  const foo = await rawClient(t, port, upgradeHead('/foo', 'FOO'))
  assert.equal((await foo.head()).status, 101)
  let s = app.switchyard.stats()
  assert.equal(s.downstream_cx_upgrades_total, 2)
  assert.equal(s.downstream_cx_upgrades_active, 2)
  assert.equal(s['upgrade.websocket.downstream_cx_upgrades_total'], 1)
  assert.equal(s['upgrade.websocket.downstream_cx_upgrades_active'], 1)
  assert.equal(s['upgrade.foo.downstream_cx_upgrades_total'], 1)
  assert.equal(s['upgrade.foo.downstream_cx_upgrades_active'], 1)
  assert.equal(s['cluster.foo.upstream_cx_active'], 1)
  assert.equal(s['cluster.ws.upstream_cx_total'], 1)

  const fooClosed = nextTunnelClose()
  foo.socket.end()
  await fooClosed
  s = app.switchyard.stats()
  assert.equal(s.downstream_cx_upgrades_active, 1)
  assert.equal(s['upgrade.foo.downstream_cx_upgrades_active'], 0)
  assert.equal(s['upgrade.websocket.downstream_cx_upgrades_active'], 1)
  assert.equal(s['cluster.foo.upstream_cx_active'] ?? 0, 0)

  const wsClosed = nextTunnelClose()
  ws.close()
  await wsClosed
  s = app.switchyard.stats()
  assert.equal(s.downstream_cx_upgrades_total, 2)
  assert.equal(s.downstream_cx_upgrades_active, 0)
})

test('counts a refused upgrade type on a matched route as downstream_rq_ws_on_non_ws_route', async (t) => {
  const { app, port } = await startProxy(t, { clusters: { foo: cluster(await freePort()) } }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  for (let i = 0; i < 2; i++) {
    const client = await rawClient(t, port, upgradeHead('/foo', 'websocket'))
    assert.equal((await client.head()).status, 403)
    await client.done
  }
  assert.equal(stat(app, 'downstream_rq_ws_on_non_ws_route'), 2)
  // Envoy counts an upgrade when its filter chain is created, which a refused type never gets.
  assert.equal(stat(app, 'downstream_cx_upgrades_total'), 0)
  assert.equal(stat(app, 'downstream_cx_upgrades_active'), 0)
})

test('counts upstream connections, connect failures and destroyed connections per cluster', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    if (isUpgradeHead(conn.head)) conn.socket.write('HTTP/1.1 426 Upgrade Required\r\ncontent-length: 0\r\n\r\n')
  })
  const dead = await freePort()
  const { app, port } = await startProxy(t, {
    clusters: { up: cluster(upstream.port), dead: cluster(dead) },
    upgradeConfigs: [{ upgradeType: 'foo' }]
  }, (app) => {
    app.get('/up', { upstream: { cluster: 'up' } }, proxy)
    app.get('/dead', { upstream: { cluster: 'dead' } }, proxy)
  })
  const refused = await rawClient(t, port, upgradeHead('/up', 'foo'))
  assert.equal((await refused.head()).status, 426)
  await refused.done
  const failed = await rawClient(t, port, upgradeHead('/dead', 'foo'))
  assert.equal((await failed.head()).status, 503)
  await failed.done
  assert.equal(stat(app, 'cluster.up.upstream_cx_total'), 1)
  assert.equal(stat(app, 'cluster.up.upstream_rq_total'), 1)
  // A 4xx is an ordinary response in Envoy (its connection may be pooled): not an upstream_cx_destroy.
  assert.equal(stat(app, 'cluster.up.upstream_cx_destroy'), 0)
  assert.equal(stat(app, 'cluster.dead.upstream_cx_connect_fail'), 1)
})

test('publishes switchyard:upgrade:start with the type, method, url and route', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.post('/foo/:id', { upstream: { cluster: 'foo' } }, proxy)
  })
  const started: unknown[] = []
  const onStart = (message: unknown): void => { started.push(message) }
  diagnostics.subscribe('switchyard:upgrade:start', onStart)
  t.after(() => diagnostics.unsubscribe('switchyard:upgrade:start', onStart))
  const client = await rawClient(t, port, upgradeHead('/foo/7?x=1', 'Foo', {}, 'POST'))
  assert.equal((await client.head()).status, 101)
  assert.equal(started.length, 1)
  const message = started[0] as { upgradeType: string, method: string, url: string, route: unknown }
  assert.equal(message.upgradeType, 'foo')
  assert.equal(message.method, 'POST')
  assert.equal(message.url, '/foo/7?x=1')
  assert.ok(message.route !== undefined && message.route !== null)
  assert.match(JSON.stringify(message.route), /\/foo\/:id/)
})

test('publishes switchyard:tunnel:close with the bytes carried each way', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    accept(conn)
    conn.socket.write('hello')
    conn.socket.on('data', (d: Buffer) => conn.socket.write(d))
    conn.socket.on('end', () => conn.socket.end())
  })
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const closed = nextTunnelClose()
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  await client.headAnd(5)
  client.socket.write('0123456789')
  await client.headAnd(15)
  client.socket.end()
  const message = await closed
  assert.equal(message.upgradeType, 'foo')
  assert.equal(message.bytesFromDownstream, 10)
  assert.equal(message.bytesFromUpstream, 15)
  assert.equal(message.error, undefined)
})

test('publishes switchyard:tunnel:close with an error when the upstream resets', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    accept(conn)
    conn.socket.once('data', () => conn.socket.resetAndDestroy())
  })
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const closed = nextTunnelClose()
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  await client.head()
  client.socket.write('trigger')
  const message = await closed
  assert.ok(message.error instanceof Error, `no error reported: ${String(message.error)}`)
})
