import { test } from 'node:test'
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { proxy, type UpstreamOptions } from '@switchyard/core'
import { startProxy, stat, nextTunnelClose } from '../helpers/start-proxy.ts'
import { rawUpstream, rawUpgradeEcho, accept, finished, isUpgradeHead, answerPlain } from '../helpers/echo-upstream.ts'
import { rawClient, upgradeHead, parseHead, type RawClient } from '../helpers/raw-client.ts'
import { freePort } from '../helpers/net.ts'

async function proxyTo (t: Parameters<typeof rawUpstream>[0], endpoints: string[], upstream: UpstreamOptions) {
  return await startProxy(t, { clusters: { foo: { endpoints } }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo', ...upstream } }, proxy)
  })
}

/** Ping-pongs through an echo tunnel until `ms` have passed; fails if the tunnel ends meanwhile. */
async function keepTalking (client: RawClient, headLength: number, ms: number): Promise<number> {
  const start = performance.now()
  let expected = headLength
  let rounds = 0
  while (performance.now() - start < ms) {
    client.socket.write('ping')
    expected += 4
    await client.until((d) => d.length >= expected)
    rounds++
  }
  return rounds
}

test('answers 504 when the upstream does not answer the handshake within the route timeout', async (t) => {
  const upstream = await rawUpstream(t, () => {})
  const { port, app } = await proxyTo(t, [`127.0.0.1:${upstream.port}`], { timeout: 150 })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  client.socket.write('held')
  await client.done
  const head = parseHead(client.received)
  assert.ok(head !== null, 'no response before close')
  assert.equal(head.status, 504)
  assert.equal(head.headers.connection, 'close')
  assert.equal(stat(app, 'cluster.foo.upstream_rq_timeout'), 1)
  assert.equal(upstream.after.get(0), undefined, 'held bytes reached the upstream')
})

test('applies Envoy\'s default 15 s route timeout to the handshake when a route sets none', { timeout: 10_000 }, async (t) => {
  let headArrived: () => void = () => {}
  const arrived = new Promise<void>((resolve) => { headArrived = resolve })
  const upstream = await rawUpstream(t, () => headArrived())
  const { port, app } = await proxyTo(t, [`127.0.0.1:${upstream.port}`], {})
  // Only the global setTimeout (the route timer) is mocked: sockets keep their own timers.
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  await arrived
  t.mock.timers.tick(14_999)
  assert.equal(stat(app, 'cluster.foo.upstream_rq_timeout'), 0, 'timed out before 15 s')
  t.mock.timers.tick(1)
  await client.done
  assert.equal(parseHead(client.received)?.status, 504)
  assert.equal(stat(app, 'cluster.foo.upstream_rq_timeout'), 1)
})

test('disarms the route timeout once the 101 arrives', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port, app } = await proxyTo(t, [`127.0.0.1:${upstream.port}`], { timeout: 60 })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  const headLength = (await client.head()).raw.length
  await keepTalking(client, headLength, 400)
  assert.equal(client.ended, false)
  assert.equal(stat(app, 'cluster.foo.upstream_rq_timeout'), 0)
})

test('closes an idle tunnel on both sides after the idle timeout and counts it', async (t) => {
  const upstream = await rawUpstream(t)
  const { port, app } = await proxyTo(t, [`127.0.0.1:${upstream.port}`], { idleTimeout: 150 })
  const closedTunnel = nextTunnelClose()
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  const conn = await upstream.next()
  accept(conn)
  assert.equal((await client.head()).status, 101)
  await client.done
  await finished(conn.socket)
  await closedTunnel
  assert.equal(stat(app, 'downstream_rq_idle_timeout'), 1)
})

test('keeps a tunnel with traffic open beyond the idle timeout', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port, app } = await proxyTo(t, [`127.0.0.1:${upstream.port}`], { idleTimeout: 100 })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  const headLength = (await client.head()).raw.length
  await keepTalking(client, headLength, 400)
  assert.equal(client.ended, false)
  assert.equal(stat(app, 'downstream_rq_idle_timeout'), 0)
})

test('retries the handshake on a connect failure', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const dead = await freePort()
  const { port, app } = await proxyTo(t, [`127.0.0.1:${dead}`, `127.0.0.1:${upstream.port}`], { retries: { numRetries: 1, retryOn: ['connect-failure'] } })
  for (let i = 0; i < 4; i++) {
    const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
    client.socket.write(`hello ${i}`)
    const head = await client.headAnd(7)
    assert.equal(head.status, 101)
    assert.equal(head.rest.toString(), `hello ${i}`)
    client.socket.destroy()
  }
  assert.ok(stat(app, 'cluster.foo.upstream_cx_connect_fail') >= 1)
  assert.ok(stat(app, 'cluster.foo.upstream_rq_retry') >= 1)
  assert.equal(stat(app, 'cluster.foo.upstream_rq_retry'), stat(app, 'cluster.foo.upstream_rq_retry_success'))
})

test('answers 503 on a connect failure without retries', async (t) => {
  const dead = await freePort()
  const { port } = await proxyTo(t, [`127.0.0.1:${dead}`], {})
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  await client.done
  assert.equal(parseHead(client.received)?.status, 503)
})

test('retries a 5xx handshake answer on a new upstream connection', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    if (!isUpgradeHead(conn.head)) { answerPlain(conn); return }
    if (conn.index === 0) { conn.socket.write('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n'); return }
    accept(conn)
    conn.socket.on('data', (d: Buffer) => conn.socket.write(d))
  })
  const { port, app } = await proxyTo(t, [`127.0.0.1:${upstream.port}`], { retries: { numRetries: 2, retryOn: ['5xx'] } })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo') + 'early')
  const head = await client.headAnd(5)
  assert.equal(head.status, 101)
  assert.equal(head.rest.toString(), 'early')
  assert.equal(upstream.connections, 2)
  assert.equal(upstream.after.get(0), undefined, 'early bytes reached the upstream that answered 503')
  assert.equal(stat(app, 'cluster.foo.upstream_rq_retry'), 1)
  assert.equal(stat(app, 'cluster.foo.upstream_rq_retry_success'), 1)
})

test('relays the last 5xx when retries run out', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    conn.socket.write(`HTTP/1.1 502 Bad Gateway\r\nx-attempt: ${conn.index}\r\ncontent-length: 0\r\n\r\n`)
  })
  const { port } = await proxyTo(t, [`127.0.0.1:${upstream.port}`], { retries: { numRetries: 2, retryOn: ['5xx'] } })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  const head = await client.head()
  assert.equal(head.status, 502)
  assert.equal(head.headers['x-attempt'], '2')
  assert.equal(upstream.connections, 3)
})

test('never retries after the 101, even when the upstream resets the tunnel', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    accept(conn)
    conn.socket.once('data', () => conn.socket.resetAndDestroy())
  })
  const { port, app } = await proxyTo(t, [`127.0.0.1:${upstream.port}`], { retries: { numRetries: 3, retryOn: ['5xx', 'connect-failure', 'reset'] } })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  assert.equal((await client.head()).status, 101)
  client.socket.write('boom')
  await client.done
  assert.equal(upstream.connections, 1)
  assert.equal(stat(app, 'cluster.foo.upstream_rq_retry'), 0)
})
