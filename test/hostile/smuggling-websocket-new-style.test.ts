import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import { startNode } from '../helpers/h2-mesh.ts'
import { rawTextClient, wsUpgradeHead } from '../helpers/raw-client.ts'
import { listen } from '../helpers/net.ts'

/**
 * WebSocket request smuggling behind a non-101 answer, new-style routes: the backend has no WebSocket
 * support, refuses the upgrade (426) and keeps its connection alive, so whatever a proxy tunnels next is
 * read as new requests — `GET /internal` reaches a backend this server's routes and hooks guard. Envoy's
 * new style (and Switchyard) tunnels only after a 101: the refusal is relayed, the upstream connection is
 * destroyed, and no client byte follows it.
 */
interface Vulnerable { port: number, paths: string[], sockets: net.Socket[], closedSockets: () => number }

async function vulnerableUpstream (t: TestContext, status = 426): Promise<Vulnerable> {
  const paths: string[] = []
  const sockets: net.Socket[] = []
  let closed = 0
  // No 'upgrade' listener: Node serves the upgrade request as an ordinary one and keeps the connection alive.
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '')
    if (req.url === '/internal') { res.end('internal secret'); return }
    res.writeHead(status, { 'content-type': 'text/plain' })
    res.end('upgrade refused')
  })
  server.keepAliveTimeout = 60_000
  server.on('connection', (s: net.Socket) => { sockets.push(s); s.on('close', () => { closed++ }) })
  const port = await listen(t, server)
  return { port, paths, sockets, closedSockets: () => closed }
}

async function front (t: TestContext, upstreamPort: number): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(switchyard, { clusters: { c: { endpoints: [`127.0.0.1:${upstreamPort}`] } }, upgradeConfigs: [{ upgradeType: 'websocket' }] })
  app.get('/chat', { upstream: { cluster: 'c' } }, proxy)
  app.get('/internal', async (_req, reply) => reply.code(403).send('guarded'))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as net.AddressInfo).port }
}

const smuggled = 'GET /internal HTTP/1.1\r\nHost: backend\r\n\r\n'

test('relays a 426, closes the client connection, and a GET /internal sent after it never reaches the upstream', async (t) => {
  const upstream = await vulnerableUpstream(t)
  const { app, port } = await front(t, upstream.port)
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat', { 'Sec-WebSocket-Version': '1337' }))
  await client.until('upgrade refused')
  if (!client.socket.destroyed) client.socket.write(smuggled)
  await client.closed
  assert.match(client.received, /^HTTP\/1\.1 426 /)
  assert.match(client.received, /\r\nconnection: close\r\n/i)
  assert.ok(!client.received.includes('internal secret'))
  assert.deepEqual(upstream.paths, ['/chat'])
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active, 0)
})

test('never forwards a GET /internal pipelined right behind the upgrade request', async (t) => {
  const upstream = await vulnerableUpstream(t)
  const { port } = await front(t, upstream.port)
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat') + smuggled)
  await client.closed
  assert.match(client.received, /^HTTP\/1\.1 426 /)
  assert.ok(!client.received.includes('internal secret'))
  assert.deepEqual(upstream.paths, ['/chat'])
})

test('the upstream connection that refused the upgrade is destroyed, and the next upgrade uses a new one', async (t) => {
  const upstream = await vulnerableUpstream(t)
  const { port } = await front(t, upstream.port)
  for (let i = 0; i < 2; i++) {
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat') + smuggled)
    await client.closed
  }
  assert.deepEqual(upstream.paths, ['/chat', '/chat'])
  assert.equal(upstream.sockets.length, 2, 'one upstream connection per upgrade')
  await Promise.all(upstream.sockets.filter((s) => !s.destroyed).map((s) => once(s, 'close')))
  assert.equal(upstream.closedSockets(), 2)
})

for (const status of [200, 400, 404, 500]) {
  test(`a ${status} answer to an upgrade is relayed and no later client byte reaches the upstream`, async (t) => {
    const upstream = await vulnerableUpstream(t, status)
    const { port } = await front(t, upstream.port)
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat') + smuggled)
    await client.until('upgrade refused')
    if (!client.socket.destroyed) client.socket.write(smuggled)
    await client.closed
    assert.equal(Number(/^HTTP\/1\.1 (\d{3})/.exec(client.received)?.[1]), status)
    assert.deepEqual(upstream.paths, ['/chat'])
  })
}

test('across an HTTP/2 hop a refusal from the app is relayed and the smuggled request never reaches it', async (t) => {
  const upstream = await vulnerableUpstream(t)
  const sidecar = await startNode(t, { upstream: `127.0.0.1:${upstream.port}`, upstreamProtocol: 'http1', listen: 'h2c' })
  const frontNode = await startNode(t, { upstream: sidecar.origin, upstreamProtocol: 'http2', listen: 'http1' })
  const client = await rawTextClient(t, frontNode.port, wsUpgradeHead('/chat') + smuggled)
  await client.until('upgrade refused')
  if (!client.socket.destroyed) client.socket.write(smuggled)
  await client.closed
  assert.match(client.received, /^HTTP\/1\.1 426 /)
  assert.deepEqual(upstream.paths, ['/chat'])
})
