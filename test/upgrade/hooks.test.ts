import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy } from '@switchyard/core'
import { startProxy, cluster, stat } from '../helpers/start-proxy.ts'
import { rawUpgradeEcho } from '../helpers/echo-upstream.ts'
import { rawClient, upgradeHead, parseHead } from '../helpers/raw-client.ts'

test('runs onRequest, preValidation and preHandler hooks for an upgrade, in order, before tunnelling', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const calls: string[] = []
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.addHook('onRequest', async (request) => { calls.push(`onRequest ${request.headers.upgrade}`) })
    app.addHook('preValidation', async (request) => { calls.push(`preValidation ${request.url}`) })
    app.addHook('preHandler', async (request) => { calls.push(`preHandler ${request.method}`) })
    app.post('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo?x=1', 'foo', {}, 'POST') + 'data')
  const head = await client.headAnd(4)
  assert.equal(head.status, 101)
  assert.equal(head.rest.toString(), 'data')
  assert.deepEqual(calls, ['onRequest foo', 'preValidation /foo?x=1', 'preHandler POST'])
})

for (const hook of ['onRequest', 'preValidation', 'preHandler'] as const) {
  test(`relays a 401 sent by the ${hook} hook to an upgrade and closes the socket without contacting the upstream`, async (t) => {
    const upstream = await rawUpgradeEcho(t)
    const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
      app.addHook(hook, async (request, reply) => {
        if (request.headers.authorization !== 'Bearer good') {
          await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized' })
        }
      })
      app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
    })
    const client = await rawClient(t, port, upgradeHead('/foo', 'foo') + 'smuggled bytes')
    await client.done
    const head = parseHead(client.received)
    assert.ok(head !== null, 'no response before close')
    assert.equal(head.status, 401)
    assert.equal(head.headers['www-authenticate'], 'Bearer')
    assert.deepEqual(JSON.parse(head.rest.toString()), { error: 'unauthorized' })
    assert.equal(upstream.connections, 0)
    assert.equal(stat(app, 'downstream_cx_upgrades_active'), 0)

    const allowed = await rawClient(t, port, upgradeHead('/foo', 'foo', { Authorization: 'Bearer good' }))
    assert.equal((await allowed.head()).status, 101)
  })
}

test('relays a hook error thrown for an upgrade as that error status and closes the socket', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.addHook('onRequest', async () => { throw Object.assign(new Error('slow down'), { statusCode: 429 }) })
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  await client.done
  assert.equal(parseHead(client.received)?.status, 429)
  assert.equal(upstream.connections, 0)
})

test('runs hooks of an encapsulated plugin scope for upgrades to its routes only', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, async (app) => {
    await app.register(async (scope) => {
      scope.addHook('onRequest', async (_request, reply) => { await reply.code(403).send('scoped') })
      scope.get('/guarded', { upstream: { cluster: 'foo' } }, proxy)
    })
    app.get('/open', { upstream: { cluster: 'foo' } }, proxy)
  })
  const guarded = await rawClient(t, port, upgradeHead('/guarded', 'foo'))
  await guarded.done
  assert.equal(parseHead(guarded.received)?.status, 403)
  const open = await rawClient(t, port, upgradeHead('/open', 'foo'))
  assert.equal((await open.head()).status, 101)
})

test('never calls the handler of a route with upstream for an upgrade, but does for a plain request', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const handled: string[] = []
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, async (request) => {
      handled.push(String(request.headers.upgrade ?? 'plain'))
      return 'from the handler'
    })
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo') + 'x')
  const head = await client.headAnd(1)
  assert.equal(head.status, 101)
  assert.equal(head.rest.toString(), 'x')
  assert.deepEqual(handled, [])
  const plain = await fetch(`http://127.0.0.1:${port}/foo`)
  assert.equal(await plain.text(), 'from the handler')
  assert.deepEqual(handled, ['plain'])
})

test('answers an enabled upgrade on a route without upstream through its handler, then closes the connection', async (t) => {
  const { port } = await startProxy(t, { upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/local', async () => 'local answer')
  })
  const client = await rawClient(t, port, upgradeHead('/local', 'foo') + 'GET /local HTTP/1.1\r\nHost: x\r\n\r\n')
  await client.done
  const text = client.received.toString('latin1')
  assert.match(text, /^HTTP\/1\.1 200 /)
  assert.ok(text.endsWith('local answer'), text)
  assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1)
})
