import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import WebSocket from 'ws'
import { proxy } from '@switchyard/core'
import { wsEchoUpstream, rawUpstream, accept } from '../helpers/echo-upstream.ts'
import { startMode } from '../helpers/tunnel-modes.ts'
import { startProxy, cluster, stat } from '../helpers/start-proxy.ts'
import { gaugesAtZero } from '../helpers/leak-check.ts'
import { rawClient, wsUpgradeHead, parseHead } from '../helpers/raw-client.ts'
import { listen } from '../helpers/net.ts'

// When the grace period of `app.close()` ends, a new-style WebSocket tunnel is not just reset (a browser
// would see 1006): each side gets a close frame with 1001, going away (RFC 6455 §7.4.1), at a frame
// boundary, and a short while to answer before its connection is reset.

for (const mode of ['new style', 'H1→H2→H1'] as const) {
  test(`at the end of the grace period both peers of a WebSocket get a close frame with 1001 (${mode})`, { timeout: 10_000 }, async (t) => {
    const upstream = await wsEchoUpstream(t)
    const { port, apps } = await startMode(t, mode, upstream.port, { core: { shutdownGracePeriod: 50 } })
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`)
    ws.on('error', () => {})
    await once(ws, 'open')
    ws.send('before the drain')
    assert.equal(String((await once(ws, 'message'))[0]), 'before the drain')
    const serverSide = upstream.sockets[0]!
    const upstreamClosed = once(serverSide, 'close')
    const clientClosed = once(ws, 'close')
    // The app that closes is the last on the path (the sidecar in H1→H2→H1), as a rolling restart would.
    await apps.at(-1)!.close()
    const [clientCode] = await clientClosed as [number]
    const [upstreamCode] = await upstreamClosed as [number]
    assert.equal(clientCode, 1001, 'the client saw no going-away close frame')
    assert.equal(upstreamCode, 1001, 'the upstream saw no going-away close frame')
    await gaugesAtZero(apps)
  })
}

test('a frame in flight when the grace period ends is finished first, and the close frame follows it', { timeout: 10_000 }, async (t) => {
  const upstream = await rawUpstream(t)
  const { port, app } = await startProxy(t, { clusters: { up: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }], shutdownGracePeriod: 20 }, (app) => {
    app.get('/ws', { upstream: { cluster: 'up' } }, proxy)
  })
  const client = await rawClient(t, port, wsUpgradeHead('/ws'))
  const conn = await upstream.next()
  accept(conn)
  assert.equal((await client.head()).status, 101)
  const headLength = parseHead(client.received)!.raw.length
  // A masked text frame announcing 10 bytes; only 4 of them sent so far.
  const mask = Buffer.from([1, 2, 3, 4])
  const payload = Buffer.from('0123456789').map((b, i) => b ^ mask[i % 4]!)
  let atUpstream = Buffer.alloc(0)
  conn.socket.on('data', (d: Buffer) => { atUpstream = Buffer.concat([atUpstream, d]) })
  client.socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | 10]), mask, payload.subarray(0, 4)]))
  while (atUpstream.length < 10) await once(conn.socket, 'data')
  const closing = app.close()
  // Toward the client nothing was in flight: its close frame comes at once (unmasked, 1001).
  await client.until((d) => d.length >= headLength + 4)
  assert.deepEqual([...client.received.subarray(headLength, headLength + 4)], [0x88, 0x02, 0x03, 0xe9])
  // The client's frame ends, then the upstream gets a masked close frame with 1001 right after it.
  client.socket.write(payload.subarray(4))
  while (atUpstream.length < 16 + 8) await once(conn.socket, 'data')
  assert.deepEqual(atUpstream.subarray(0, 16), Buffer.concat([Buffer.from([0x81, 0x80 | 10]), mask, payload]))
  const close = atUpstream.subarray(16, 24)
  assert.equal(close[0], 0x88)
  assert.equal(close[1], 0x80 | 2, 'a masked two-byte payload')
  const key = close.subarray(2, 6)
  assert.equal(((close[6]! ^ key[0]!) << 8) | (close[7]! ^ key[1]!), 1001)
  // Neither peer answers: both are reset after the short bound, and close returns.
  await closing
  await client.closed
  assert.equal(stat(app, 'downstream_cx_upgrades_active'), 0)
})

test('the 503s a drain answers are counted: a new upgrade, a new CONNECT and a new plain request', { timeout: 10_000 }, async (t) => {
  const upstream = await wsEchoUpstream(t)
  const { port, app } = await startProxy(t, {
    clusters: { up: cluster(upstream.port) },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'CONNECT' }],
    shutdownGracePeriod: 60_000
  }, (app) => {
    app.get('/*', { upstream: { cluster: 'up' } }, proxy)
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'up' }, connectConfig: {}, handler: proxy })
  })
  // An open tunnel keeps the drain going while the refusals are counted.
  const open = new WebSocket(`ws://127.0.0.1:${port}/hold`)
  open.on('error', () => {})
  await once(open, 'open')
  // A keep-alive connection opened before the drain: Fastify answers a new request on it with 503.
  const agent = new http.Agent({ keepAlive: true })
  t.after(() => agent.destroy())
  const get = async (): Promise<number> => await new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/plain`, { agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) }).on('error', reject)
  })
  assert.equal(await get(), 200)
  const closing = app.close()
  const upgrade = await rawClient(t, port, wsUpgradeHead('/new'))
  await upgrade.done
  assert.equal(parseHead(upgrade.received)?.status, 503)
  const connect = await rawClient(t, port, 'CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\n')
  await connect.done
  assert.equal(parseHead(connect.received)?.status, 503)
  assert.equal(await get(), 503)
  assert.equal(stat(app, 'downstream_rq_drain_refused'), 3)
  open.close(1000)
  await closing
})

test('an upgrade that is not a WebSocket is closed at the end of the grace period as before, with no frame', { timeout: 10_000 }, async (t) => {
  const echo = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\n\r\n')
      socket.pipe(socket)
    })
  })
  const echoPort = await listen(t, echo)
  const { port, app } = await startProxy(t, { clusters: { up: cluster(echoPort) }, upgradeConfigs: [{ upgradeType: 'foo' }], shutdownGracePeriod: 20 }, (app) => {
    app.get('/foo', { upstream: { cluster: 'up' } }, proxy)
  })
  const client = await rawClient(t, port, 'GET /foo HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: foo\r\n\r\n')
  const headLength = (await client.head()).raw.length
  await app.close()
  await client.done
  assert.equal(client.received.length, headLength, 'bytes were written into a non-WebSocket tunnel at shutdown')
})
