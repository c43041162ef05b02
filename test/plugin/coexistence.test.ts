import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import WebSocket from 'ws'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import httpProxy from '@fastify/http-proxy'
import switchyard, { proxy } from '@switchyard/core'
import type net from 'node:net'
import { startProxy, cluster, stat } from '../helpers/start-proxy.ts'
import { wsEchoUpstream } from '../helpers/echo-upstream.ts'
import { rawClient, wsUpgradeHead } from '../helpers/raw-client.ts'

async function roundTrip (t: TestContext, url: string, message: string, protocols?: string[]): Promise<string> {
  const ws = new WebSocket(url, protocols)
  t.after(() => ws.terminate())
  await once(ws, 'open')
  ws.send(message)
  const [data] = await once(ws, 'message') as [Buffer]
  ws.close()
  await once(ws, 'close')
  return String(data)
}

/** Sends a raw WebSocket upgrade, waits for the answer head, half-closes and returns everything received. */
async function rawUpgradeOnce (t: TestContext, port: number, path: string): Promise<{ status: number, responses: number }> {
  const client = await rawClient(t, port, wsUpgradeHead(path))
  const head = await client.head()
  client.socket.end()
  await client.done
  if (!client.socket.destroyed) client.socket.destroy()
  const text = client.received.toString('latin1')
  return { status: head.status, responses: text.match(/HTTP\/1\.[01] \d{3} /g)?.length ?? 0 }
}

test('keeps @fastify/websocket routes working beside switchyard routes', async (t) => {
  const upstream = await wsEchoUpstream(t)
  const { wsUrl, app } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, async (app) => {
    await app.register(fastifyWebsocket)
    app.get('/local', { websocket: true }, (socket) => {
      socket.on('message', (m) => socket.send(`local:${String(m)}`))
    })
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
  })
  assert.equal(await roundTrip(t, `${wsUrl}/local`, 'hi'), 'local:hi')
  assert.equal(await roundTrip(t, `${wsUrl}/chat`, 'hi'), 'hi')
  assert.equal(upstream.requests.length, 1)
  assert.equal(stat(app, 'downstream_cx_upgrades_total'), 1)
})

test('serves plain requests through @fastify/http-proxy beside switchyard upgrades', async (t) => {
  const upstream = await wsEchoUpstream(t)
  const { wsUrl, url } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, async (app) => {
    await app.register(httpProxy, { upstream: `http://127.0.0.1:${upstream.port}`, prefix: '/api' })
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
  })
  const res = await fetch(`${url}/api/things`)
  assert.equal(res.status, 200)
  assert.equal(await res.text(), 'plain GET /things')
  assert.equal(await roundTrip(t, `${wsUrl}/chat`, 'through switchyard'), 'through switchyard')
})

for (const order of ['switchyard first', 'switchyard last'] as const) {
  test(`does not crash with @fastify/websocket and a websocket @fastify/http-proxy on one server, ${order} (http-proxy #314, websocket #262)`, async (t) => {
    const upstream = await wsEchoUpstream(t)
    const proxied = await wsEchoUpstream(t)
    const app: FastifyInstance = Fastify()
    t.after(() => app.close())
    const core = { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }
    if (order === 'switchyard first') await app.register(switchyard, core)
    await app.register(fastifyWebsocket)
    await app.register(httpProxy, { upstream: `http://127.0.0.1:${proxied.port}`, prefix: '/hp', websocket: true })
    if (order === 'switchyard last') await app.register(switchyard, core)
    app.get('/local', { websocket: true }, (socket) => {
      socket.on('message', (m) => socket.send(`local:${String(m)}`))
    })
    app.get('/chat', { upstream: { cluster: 'chat' } }, proxy)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as net.AddressInfo).port
    const wsUrl = `ws://127.0.0.1:${port}`

    assert.equal(await roundTrip(t, `${wsUrl}/hp/echo`, 'via http-proxy'), 'via http-proxy')
    assert.equal(await roundTrip(t, `${wsUrl}/local`, 'via websocket'), 'local:via websocket')
    assert.equal(await roundTrip(t, `${wsUrl}/chat`, 'via switchyard'), 'via switchyard')
    assert.equal(proxied.requests.length, 1)
    assert.equal(upstream.requests.length, 1)

    for (const [path, status] of [['/hp/echo', 101], ['/local', 101], ['/chat', 101], ['/nowhere', 404]] as const) {
      const answer = await rawUpgradeOnce(t, port, path)
      assert.equal(answer.status, status, path)
      assert.equal(answer.responses, 1, `${path} was answered ${answer.responses} times`)
    }
    assert.equal(upstream.requests.length, 2)
    assert.equal(proxied.requests.length, 2)
  })
}

test('refuses with 403 a WebSocket upgrade to a switchyard route that does not enable it, even with @fastify/websocket registered', async (t) => {
  const upstream = await wsEchoUpstream(t)
  const { port, app } = await startProxy(t, { clusters: { chat: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, async (app) => {
    await app.register(fastifyWebsocket)
    app.get('/local', { websocket: true }, (socket) => { socket.on('message', (m) => socket.send(String(m))) })
    app.get('/foo-only', { upstream: { cluster: 'chat' } }, proxy)
  })
  const answer = await rawUpgradeOnce(t, port, '/foo-only')
  assert.equal(answer.status, 403)
  assert.equal(answer.responses, 1)
  assert.equal(upstream.requests.length, 0)
  assert.equal(stat(app, 'downstream_rq_ws_on_non_ws_route'), 1)
})

test('recognises the upgrade listener of the installed @fastify/websocket, and only it (fails when a release changes how it is told apart)', async (t) => {
  const { isFastifyWebsocketListener } = await import('@switchyard/core/internal')
  const bare = Fastify()
  t.after(() => bare.close())
  await bare.register(fastifyWebsocket)
  await bare.register(httpProxy, { upstream: 'http://127.0.0.1:1', prefix: '/p', websocket: true })
  await bare.ready()
  type Listener = Parameters<typeof isFastifyWebsocketListener>[0]
  const listeners = bare.server.listeners('upgrade') as Listener[]
  assert.equal(listeners.length, 2, 'one listener each from @fastify/websocket and @fastify/http-proxy')
  assert.deepEqual(listeners.map(fn => isFastifyWebsocketListener(fn)), [true, false])
})
