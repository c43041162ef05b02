import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy } from '@switchyard/core'
import { startProxy, cluster } from '../helpers/start-proxy.ts'
import { rawUpgradeEcho, rawUpstream, accept, closed } from '../helpers/echo-upstream.ts'
import { rawClient, upgradeHead } from '../helpers/raw-client.ts'

test('tunnels a POST upgrade of type foo with raw bytes both ways', async (t) => {
  const upstream = await rawUpstream(t)
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.post('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo', {}, 'POST'))
  const conn = await upstream.next()
  assert.match(conn.head, /^POST \/foo HTTP\/1\.1\r\n/)
  assert.match(conn.head, /\r\nupgrade: foo\r\n/i)
  accept(conn)
  const head = await client.head()
  assert.equal(head.status, 101)
  assert.equal(head.headers.upgrade, 'foo')

  const fromClient = Buffer.from([0, 13, 10, 13, 10, 0xff, 0x80, 65, 66])
  client.socket.write(fromClient)
  const got: Buffer[] = []
  let total = 0
  await new Promise<void>((resolve) => conn.socket.on('data', (d: Buffer) => { got.push(d); total += d.length; if (total >= fromClient.length) resolve() }))
  assert.deepEqual(Buffer.concat(got), fromClient)

  const fromUpstream = Buffer.from('HTTP/1.1 200 OK\r\n\r\nnot a response, just payload\x00\xfe', 'latin1')
  conn.socket.write(fromUpstream)
  const after = await client.headAnd(fromUpstream.length)
  assert.deepEqual(after.rest, fromUpstream)
})

test('forwards chunked framing sent after the upgrade head verbatim', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.post('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo', { 'Transfer-Encoding': 'chunked' }, 'POST'))
  await client.head()
  const framed = '5\r\nhello\r\n0\r\n\r\n'
  client.socket.write(framed)
  const head = await client.headAnd(framed.length)
  assert.equal(head.status, 101)
  assert.equal(head.rest.toString('latin1'), framed)
})

test('tunnels a large non-WebSocket payload in order in both directions', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  await client.head()
  const payload = Buffer.alloc(4 * 1024 * 1024)
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 11)) & 0xff
  client.socket.write(payload)
  client.socket.end()
  await closed(client.socket)
  const head = await client.head()
  assert.equal(head.rest.length, payload.length)
  assert.ok(head.rest.equals(payload), 'echoed bytes differ from the sent bytes')
})

test('tunnels an upgrade type whose name has mixed case to a route enabling it in lower case', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'FoO'))
  client.socket.write('ping')
  const head = await client.headAnd(4)
  assert.equal(head.status, 101)
  assert.equal(head.rest.toString(), 'ping')
  assert.equal(app.switchyard.stats()['upgrade.foo.downstream_cx_upgrades_total'], 1)
})
