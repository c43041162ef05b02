import { test } from 'node:test'
import assert from 'node:assert/strict'
import type net from 'node:net'
import { proxy } from '@switchyard/core'
import { startProxy, cluster, stat } from '../helpers/start-proxy.ts'
import { rawUpstream, accept, finished } from '../helpers/echo-upstream.ts'
import { rawClient, upgradeHead, requestHead } from '../helpers/raw-client.ts'

/** Gathers what `socket` receives from now on; resolves once `n` bytes have come. */
function collect (socket: net.Socket): { bytes: () => Buffer, atLeast: (n: number) => Promise<Buffer> } {
  let got = Buffer.alloc(0)
  const waiters: Array<() => void> = []
  socket.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); for (const w of [...waiters]) w() })
  return {
    bytes: () => got,
    atLeast: (n) => new Promise((resolve, reject) => {
      const check = (): void => {
        if (got.length >= n) resolve(got)
        else if (socket.destroyed) reject(new Error(`closed after ${got.length} of ${n} bytes: ${JSON.stringify(got.toString('latin1'))}`))
      }
      waiters.push(check)
      socket.once('close', check)
      check()
    })
  }
}

/** Event-loop turns, so bytes the proxy would forward at once have had the chance to reach the upstream. */
async function turns (n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve))
}

test('holds bytes sent before the 101 and forwards them after it, in order', async (t) => {
  const upstream = await rawUpstream(t)
  const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.post('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  let downstream: net.Socket | undefined
  app.server.on('connection', (s: net.Socket) => { downstream = s })
  const head = upgradeHead('/foo', 'foo', {}, 'POST')
  const client = await rawClient(t, port, head + 'early-1|')
  const conn = await upstream.next()
  const fromProxy = collect(conn.socket)
  assert.equal(conn.rest.length, 0, 'early bytes arrived with the head')
  client.socket.write('early-2|')
  // Let the proxy read the second write, then give it room to (wrongly) forward it.
  for (let i = 0; i < 500 && (downstream?.bytesRead ?? 0) < head.length + 16; i++) await turns(1)
  await turns(20)
  assert.equal(fromProxy.bytes().length, 0, `early bytes reached the upstream before its 101: ${fromProxy.bytes().toString()}`)
  accept(conn)
  assert.equal((await client.head()).status, 101)
  client.socket.write('late')
  const got = await fromProxy.atLeast(20)
  assert.equal(got.toString(), 'early-1|early-2|late')
})

test('drops held bytes when the upstream answers 426, and never serves them as a request', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    conn.socket.write('HTTP/1.1 426 Upgrade Required\r\ncontent-length: 4\r\n\r\nnope')
  })
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.post('/foo', { upstream: { cluster: 'foo' } }, proxy)
    app.get('/secret', async () => 'secret served')
  })
  const smuggled = requestHead('GET', '/secret', { Host: 'front.example' })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo', {}, 'POST') + smuggled)
  await client.done
  const text = client.received.toString('latin1')
  assert.match(text, /^HTTP\/1\.1 426 /)
  assert.ok(text.endsWith('nope'), text)
  assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, `more than one response:\n${text}`)
  assert.doesNotMatch(text, /secret served/)
  assert.equal(upstream.after.get(0), undefined, 'held bytes reached the upstream')
})

test('drops held bytes when the upstream answers 200 to an upgrade', async (t) => {
  let upstreamSocket: net.Socket | undefined
  const upstream = await rawUpstream(t, (conn) => {
    upstreamSocket = conn.socket
    conn.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
  })
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.post('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo', {}, 'POST') + 'EARLY-PAYLOAD')
  await client.done
  assert.match(client.received.toString('latin1'), /^HTTP\/1\.1 200 /)
  // The proxy closes the upstream connection that answered the upgrade.
  await finished(upstreamSocket!)
  assert.equal(upstream.after.get(0), undefined, 'held bytes reached the upstream')
})

test('forwards bytes that arrive in the same packet as the 101 request head after the 101', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    accept(conn)
    conn.socket.on('data', (d: Buffer) => conn.socket.write(d))
  })
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const early = Buffer.alloc(200_000, 'e')
  const client = await rawClient(t, port, Buffer.concat([Buffer.from(upgradeHead('/foo', 'foo')), early]))
  const head = await client.headAnd(early.length)
  assert.equal(head.status, 101)
  assert.ok(head.rest.equals(early))
})

test('ends the stream when the client half-closes before the 101, and never delivers its held bytes', async (t) => {
  // Envoy's HTTP/1 codec closes the stream when the client goes away before the upgrade completes; a FIN
  // cannot be told apart from a client that has gone, and holding the upstream open would leak it.
  const upstream = await rawUpstream(t)
  const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.post('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo', {}, 'POST') + 'request body then FIN')
  const conn = await upstream.next()
  const fromProxy = collect(conn.socket)
  client.socket.end()
  await finished(conn.socket)
  assert.equal(Buffer.concat([conn.rest, fromProxy.bytes()]).toString(), '', 'held bytes are dropped')
  await client.done
  assert.equal(stat(app, 'downstream_cx_upgrades_active'), 0)
})
