import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import WebSocket from 'ws'
import { proxy } from '@switchyard/core'
import { startProxy, cluster, nextTunnelClose } from '../helpers/start-proxy.ts'
import { wsEchoUpstream, rawUpstream, headerOf, accept } from '../helpers/echo-upstream.ts'
import { rawClient, wsUpgradeHead, WS_KEY } from '../helpers/raw-client.ts'

async function echo (ws: WebSocket, data: string | Buffer): Promise<Buffer> {
  ws.send(data)
  const [back] = await once(ws, 'message') as [Buffer]
  return Buffer.from(back)
}

test('tunnels a ws client through the proxy to a ws echo upstream, text and binary', async (t) => {
  const upstream = await wsEchoUpstream(t)
  const { wsUrl } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
  })
  const ws = new WebSocket(`${wsUrl}/chat`)
  t.after(() => ws.terminate())
  await once(ws, 'open')
  assert.equal(String(await echo(ws, 'hello')), 'hello')
  const binary = Buffer.from([0, 1, 2, 254, 255])
  assert.deepEqual(await echo(ws, binary), binary)
  const big = Buffer.alloc(1024 * 1024, 7)
  assert.deepEqual(await echo(ws, big), big)
  assert.equal(upstream.requests.length, 1)
  assert.equal(upstream.requests[0]!.url, '/chat')
  ws.close(1000, 'bye')
  const [code, reason] = await once(ws, 'close') as [number, Buffer]
  assert.equal(code, 1000)
  assert.equal(String(reason), 'bye')
})

test('delivers the client subprotocol list to the upstream unchanged and returns its choice', async (t) => {
  const upstream = await wsEchoUpstream(t, { handleProtocols: (protocols) => protocols.has('chat.v2') ? 'chat.v2' : false })
  const { wsUrl } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
  })
  const ws = new WebSocket(`${wsUrl}/chat`, ['chat.v1', 'chat.v2', 'superchat'])
  t.after(() => ws.terminate())
  await once(ws, 'open')
  assert.equal(upstream.requests[0]!.headers['sec-websocket-protocol'], 'chat.v1,chat.v2,superchat')
  assert.equal(ws.protocol, 'chat.v2')
  assert.equal(String(await echo(ws, 'sub')), 'sub')
})

test('delivers the permessage-deflate offer unchanged and compresses end to end', async (t) => {
  const upstream = await wsEchoUpstream(t, { perMessageDeflate: { threshold: 0 } })
  const { wsUrl } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
  })
  const ws = new WebSocket(`${wsUrl}/chat`, { perMessageDeflate: { threshold: 0, clientMaxWindowBits: 10 } })
  t.after(() => ws.terminate())
  await once(ws, 'open')
  const offer = upstream.requests[0]!.headers['sec-websocket-extensions']
  assert.equal(offer, 'permessage-deflate; client_max_window_bits=10')
  assert.match(ws.extensions, /permessage-deflate/)
  const text = 'compress me '.repeat(5000)
  assert.equal(String(await echo(ws, text)), text)
})

test('passes the client Sec-WebSocket-Key to the upstream as sent', async (t) => {
  const upstream = await wsEchoUpstream(t)
  const { wsUrl } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
  })
  let sentKey: unknown
  let accept: unknown
  const ws = new WebSocket(`${wsUrl}/chat`, {
    finishRequest: (req) => { sentKey = req.getHeader('sec-websocket-key'); req.end() }
  })
  t.after(() => ws.terminate())
  ws.on('upgrade', (res) => { accept = res.headers['sec-websocket-accept'] })
  await once(ws, 'open')
  assert.equal(typeof sentKey, 'string')
  assert.equal(upstream.requests[0]!.headers['sec-websocket-key'], sentKey)
  // ws checks the accept against its own key: the upstream computed it from the same key.
  assert.equal(typeof accept, 'string')
})

test('passes a raw client key byte for byte and relays the upstream accept and 101 unchanged', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    accept(conn, 'Sec-WebSocket-Accept: upstream-says-this\r\n')
    conn.socket.on('data', (d: Buffer) => conn.socket.write(d))
  })
  const { port } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
  })
  const client = await rawClient(t, port, wsUpgradeHead('/chat'))
  const head = await client.head()
  assert.equal(head.status, 101)
  assert.equal(head.headers['sec-websocket-accept'], 'upstream-says-this')
  assert.equal(head.headers['content-length'], undefined)
  assert.equal(head.headers['transfer-encoding'], undefined)
  assert.equal(headerOf(upstream.heads[0]!, 'sec-websocket-key'), WS_KEY)
  assert.equal(headerOf(upstream.heads[0]!, 'sec-websocket-version'), '13')
})

test('counts the upgrade and keeps the active gauge until the socket closes', async (t) => {
  const upstream = await wsEchoUpstream(t)
  const { wsUrl, app } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
  })
  const ws = new WebSocket(`${wsUrl}/chat`)
  t.after(() => ws.terminate())
  await once(ws, 'open')
  assert.equal(String(await echo(ws, 'x')), 'x')
  const stats = app.switchyard.stats()
  assert.equal(stats.downstream_cx_upgrades_total, 1)
  assert.equal(stats.downstream_cx_upgrades_active, 1)
  assert.equal(stats['upgrade.websocket.downstream_cx_upgrades_total'], 1)
  const closed = nextTunnelClose()
  ws.close()
  await closed
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active, 0)
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_total, 1)
})

test('carries WebSocket close codes and reasons both ways', async (t) => {
  const upstream = await wsEchoUpstream(t)
  const { wsUrl } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
  })
  const first = new WebSocket(`${wsUrl}/chat`)
  t.after(() => first.terminate())
  await once(first, 'open')
  const serverSide = once(upstream.sockets[0]!, 'close')
  first.close(4001, 'client says bye')
  const [code, reason] = await serverSide as [number, Buffer]
  assert.equal(code, 4001)
  assert.equal(String(reason), 'client says bye')

  const second = new WebSocket(`${wsUrl}/chat`)
  t.after(() => second.terminate())
  await once(second, 'open')
  const clientSide = once(second, 'close')
  upstream.sockets[1]!.close(4002, 'server says bye')
  const [code2, reason2] = await clientSide as [number, Buffer]
  assert.equal(code2, 4002)
  assert.equal(String(reason2), 'server says bye')
})
