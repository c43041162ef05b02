import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import Fastify from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import { wsEchoUpstream } from '../helpers/echo-upstream.ts'

/**
 * HTTP/1.1 CONNECT is Envoy's upgrade type `CONNECT`, off by default: a route that matches it and does not
 * enable the type answers 403; no route, 404. Node alone would drop the socket without an answer.
 * (Tunnelling it is covered in test/connect/.)
 */
async function exchange (port: number, request: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  socket.write(request)
  let answer = ''
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1') })
  await once(socket, 'close')
  return answer
}

const CONNECT = 'CONNECT upstream.example:443 HTTP/1.1\r\nhost: upstream.example:443\r\n\r\n'

test('an HTTP/1.1 CONNECT to a route that does not enable CONNECT gets 403 with an empty body, the connection closes and the next request is served', async (t) => {
  const upstream = await wsEchoUpstream(t)
  const app = Fastify()
  await app.register(switchyard, {
    clusters: { up: { endpoints: [`127.0.0.1:${upstream.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }]
  })
  app.get('/ws', { upstream: { cluster: 'up' } }, proxy)
  app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'up' }, handler: proxy })
  app.get('/plain', async () => 'plain')
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const port = (app.server.address() as net.AddressInfo).port

  const answer = await exchange(port, CONNECT + 'tunnelled bytes that must go nowhere')
  assert.match(answer, /^HTTP\/1\.1 403 Forbidden\r\n/)
  assert.match(answer, /\r\nconnection: close\r\n/i)
  assert.match(answer, /\r\ncontent-length: 0\r\n/)
  assert.match(answer, /\r\n\r\n$/, 'an empty body')
  assert.equal(app.switchyard.stats().downstream_rq_ws_on_non_ws_route, 1)
  assert.equal(upstream.requests.length + upstream.plain.length, 0, 'nothing reached the upstream')

  const plain = await exchange(port, 'GET /plain HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
  assert.match(plain, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nplain$/)
})

test('an HTTP/1.1 CONNECT that matches no route gets 404 and nothing reaches an upstream', async (t) => {
  const upstream = await wsEchoUpstream(t)
  const app = Fastify()
  await app.register(switchyard, { clusters: { up: { endpoints: [`127.0.0.1:${upstream.port}`] } }, upgradeConfigs: [{ upgradeType: 'CONNECT' }] })
  app.get('/ws', { upstream: { cluster: 'up' } }, proxy)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const answer = await exchange((app.server.address() as net.AddressInfo).port, CONNECT + 'bytes')
  assert.match(answer, /^HTTP\/1\.1 404 Not Found\r\n/)
  assert.equal(upstream.requests.length + upstream.plain.length, 0, 'nothing reached the upstream')
})

test('an application that listens for CONNECT itself answers it', async (t) => {
  const app = Fastify()
  await app.register(switchyard, { clusters: {} })
  app.server.on('connect', (_req, socket: net.Socket) => {
    socket.end('HTTP/1.1 200 Connection Established\r\n\r\nmine')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const answer = await exchange((app.server.address() as net.AddressInfo).port, CONNECT)
  assert.equal(answer, 'HTTP/1.1 200 Connection Established\r\n\r\nmine')
  assert.equal(app.switchyard.stats().downstream_rq_ws_on_non_ws_route ?? 0, 0)
})
