import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import { startNode } from '../helpers/h2-mesh.ts'
import { rawExchange, scriptedUpstream } from '../helpers/hostile.ts'
import { listen } from '../helpers/net.ts'

/**
 * CVE-2026-73548: bytes a client sends after the head of a generic upgrade (`Upgrade: foo`), before the
 * upstream accepts, were written upstream at once; an upstream that refused the upgrade and kept its
 * connection read them as a pipelined request, and that connection was then reused for someone else.
 * Fixed as Envoy does: early bytes are held until the 101 and dropped without one; an upstream connection
 * that answered an upgrade is destroyed, never reused.
 */
const pipelined = 'GET /internal HTTP/1.1\r\nhost: backend\r\n\r\n'
const fooPost = (body: string, declared = body.length): string =>
  `POST /up HTTP/1.1\r\nhost: front\r\nconnection: upgrade\r\nupgrade: foo\r\ncontent-type: text/plain\r\ncontent-length: ${declared}\r\n\r\n${body}`

interface Backend { port: number, requests: Array<{ url: string, socket: net.Socket }> }

/** A plain Node HTTP server (no 'upgrade' listener: the upgrade is served as a request) that keeps connections alive. */
async function backend (t: TestContext, status: number): Promise<Backend> {
  const requests: Backend['requests'] = []
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', socket: req.socket })
    // Answered at once: the proxy holds an upgrade's declared body with its other early bytes (Envoy).
    req.resume()
    if (req.url === '/internal') { res.end('internal secret'); return }
    res.writeHead(req.url === '/plain' ? 200 : status, { 'content-type': 'text/plain' })
    res.end(`answer ${req.url}`)
  })
  server.keepAliveTimeout = 60_000
  return { port: await listen(t, server), requests }
}

async function front (t: TestContext, port: number): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(switchyard, { clusters: { b: { endpoints: [`127.0.0.1:${port}`] } }, upgradeConfigs: [{ upgradeType: 'foo' }] })
  app.route({ method: ['GET', 'POST'], url: '/*', upstream: { cluster: 'b' }, handler: proxy })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as net.AddressInfo).port }
}

for (const status of [200, 400, 404, 426, 500]) {
  test(`a generic upgrade answered ${status} never lets its early bytes be parsed upstream as a request`, { timeout: 10_000 }, async (t) => {
    const b = await backend(t, status)
    const { port } = await front(t, b.port)
    const r = await rawExchange(port, [fooPost('BODY') + pipelined])
    assert.equal(r.status, status)
    assert.ok(!r.data.includes('internal secret'))
    assert.deepEqual(b.requests.map((q) => q.url), ['/up'], 'the upstream parsed no second request')
  })
}

test('early bytes sent in pieces while the upstream thinks are never parsed upstream either', { timeout: 10_000 }, async (t) => {
  const b = await backend(t, 426)
  const { port } = await front(t, b.port)
  const r = await rawExchange(port, [fooPost(''), pipelined.slice(0, 10), pipelined.slice(10)])
  assert.equal(r.status, 426)
  assert.deepEqual(b.requests.map((q) => q.url), ['/up'])
})

test('a Content-Length shorter than the bytes sent does not make the rest a request upstream', { timeout: 10_000 }, async (t) => {
  const b = await backend(t, 404)
  const { port } = await front(t, b.port)
  const r = await rawExchange(port, [fooPost('BODY' + pipelined, 4)])
  assert.equal(r.status, 404)
  assert.deepEqual(b.requests.map((q) => q.url), ['/up'])
})

test('the upstream connection that answered the upgrade is closed and never carries another request', { timeout: 10_000 }, async (t) => {
  const b = await backend(t, 200)
  const { port } = await front(t, b.port)
  await rawExchange(port, [fooPost('BODY') + pipelined])
  const upgradeSocket = b.requests[0]!.socket
  if (!upgradeSocket.destroyed) await once(upgradeSocket, 'close')
  // Plain requests through the proxy's pool, then another upgrade: none lands on the upgrade's connection.
  for (const bytes of ['GET /plain HTTP/1.1\r\nhost: f\r\nconnection: close\r\n\r\n', 'GET /plain HTTP/1.1\r\nhost: f\r\nconnection: close\r\n\r\n', fooPost('') + pipelined]) {
    await rawExchange(port, [bytes])
  }
  assert.deepEqual(b.requests.map((q) => q.url), ['/up', '/plain', '/plain', '/up'])
  for (const q of b.requests.slice(1)) assert.notEqual(q.socket, upgradeSocket)
  assert.notEqual(b.requests[3]!.socket, b.requests[1]!.socket, 'an upgrade never takes a pooled connection')
})

test('with a 101 the early bytes follow it as payload, never as a request before it', { timeout: 10_000 }, async (t) => {
  const upstream = await scriptedUpstream()
  t.after(() => upstream.close())
  const { port } = await front(t, upstream.port)
  const r = await rawExchange(port, [fooPost('BODY').replace('POST /up', 'POST /accept') + pipelined, 'AWAIT_HEAD', 'END'])
  assert.equal(r.status, 101)
  assert.equal(upstream.heads.length, 1)
  // The scripted app recorded the bytes after its 101: the early bytes, in order, as tunnel payload.
  assert.equal(upstream.after.get(0), 'BODY' + pipelined)
  assert.ok(r.data.endsWith('BODY' + pipelined), 'echoed back through the tunnel')
})

test('every upgrade attempt takes its own upstream connection, each closed after its answer', { timeout: 10_000 }, async (t) => {
  const upstream = await scriptedUpstream()
  t.after(() => upstream.close())
  const { app, port } = await front(t, upstream.port)
  for (const path of ['/426-keep-alive', '/200-upgrade', '/426-keep-alive']) {
    const r = await rawExchange(port, [fooPost('').replace('POST /up', `POST ${path}`) + pipelined])
    assert.ok(r.status === 426 || r.status === 200)
  }
  assert.deepEqual(upstream.headConnection, [0, 1, 2], 'one connection per attempt, none reused')
  assert.deepEqual([...upstream.after.values()], [], 'no byte after a head reached the upstream')
  // The proxy closed its side of each (the scripted app keeps half-open sockets until it is closed itself).
  await Promise.all([...upstream.sockets].filter((s) => !s.readableEnded).map((s) => once(s, 'end')))
  assert.equal(upstream.sockets.size, 3)
  assert.equal(app.switchyard.stats()['cluster.b.upstream_cx_active'] ?? 0, 0)
})

test('across an HTTP/2 hop a refused generic upgrade never delivers its early bytes to the app', { timeout: 10_000 }, async (t) => {
  const b = await backend(t, 426)
  const sidecar = await startNode(t, { upstream: `127.0.0.1:${b.port}`, upstreamProtocol: 'http1', listen: 'h2c' })
  const frontNode = await startNode(t, { upstream: sidecar.origin, upstreamProtocol: 'http2', listen: 'http1' })
  const r = await rawExchange(frontNode.port, [fooPost('BODY') + pipelined])
  assert.equal(r.status, 426)
  // Envoy's downgrade: the POST arrives as GET; what matters here is that nothing else arrives.
  assert.deepEqual(b.requests.map((q) => q.url), ['/up'])
})
