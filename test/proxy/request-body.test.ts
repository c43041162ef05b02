import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import http2 from 'node:http2'
import type net from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import { startProxy, cluster, stat } from '../helpers/start-proxy.ts'
import { listen } from '../helpers/net.ts'
import { rawClient, parseHead } from '../helpers/raw-client.ts'
import { watchProxySockets, heldBetween, flood } from '../helpers/flood.ts'

/** What an upstream saw of one request body. */
interface Seen { method: string, contentType: string | undefined, length: number, sha256: string, headers: http.IncomingHttpHeaders }

/** An upstream that hashes every request body; `answer` may pick the status of the n-th request. */
async function hashingUpstream (t: Parameters<typeof listen>[0], answer: (index: number) => number = () => 200): Promise<{ port: number, seen: Seen[] }> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256')
    let length = 0
    req.on('data', (c: Buffer) => { hash.update(c); length += c.length })
    req.on('end', () => {
      const index = seen.push({ method: req.method ?? '', contentType: req.headers['content-type'], length, sha256: hash.digest('hex'), headers: req.headers }) - 1
      res.statusCode = answer(index)
      res.end(String(length))
    })
  })
  return { port: await listen(t, server), seen }
}

function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Sends a request with exactly these headers and body over HTTP/1.1; resolves with status and body. */
async function send (url: string, method: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number, body: string }> {
  const req = http.request(url, { method, headers, agent: false })
  req.end(body)
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  let text = ''
  res.setEncoding('utf8')
  for await (const chunk of res) text += chunk as string
  return { status: res.statusCode ?? 0, body: text }
}

const cases: Array<{ name: string, headers: Record<string, string>, body: Buffer }> = [
  { name: 'application/octet-stream', headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(200_000) },
  { name: 'text/csv', headers: { 'content-type': 'text/csv' }, body: Buffer.from('a,b\n1,2\n3,"x, y"\n') },
  {
    name: 'multipart/form-data',
    headers: { 'content-type': 'multipart/form-data; boundary=XyZ' },
    body: Buffer.from('--XyZ\r\ncontent-disposition: form-data; name="f"; filename="b.bin"\r\n\r\n\x00\x01\xff\r\n--XyZ--\r\n', 'latin1')
  },
  { name: 'no Content-Type', headers: {}, body: Buffer.from('no type at all') },
  { name: 'a malformed Content-Type (;;;)', headers: { 'content-type': ';;;' }, body: Buffer.from('still a body') },
  // JSON Fastify would parse and serialise again (spaces, key order, number forms) goes as it came.
  { name: 'application/json with its own spacing', headers: { 'content-type': 'application/json' }, body: Buffer.from('{ "b" : 1.50,\n  "a":[ 1e3 ] }') },
  { name: 'chunked, without a length', headers: { 'content-type': 'application/x-ndjson', 'transfer-encoding': 'chunked' }, body: Buffer.from('{"n":1}\n{"n":2}\n') }
]

for (const c of cases) {
  test(`proxy sends a body with ${c.name} upstream byte for byte`, async (t) => {
    const upstream = await hashingUpstream(t)
    const { url } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
      app.post('/in', { upstream: { cluster: 'app' } }, proxy)
    })
    const res = await send(`${url}/in`, 'POST', c.headers, c.body)
    assert.equal(res.status, 200, res.body)
    assert.equal(upstream.seen.length, 1)
    assert.equal(upstream.seen[0]!.length, c.body.length)
    assert.equal(upstream.seen[0]!.sha256, sha256(c.body))
    assert.equal(upstream.seen[0]!.contentType, c.headers['content-type'])
  })
}

test('routes without upstream keep Fastify\'s parsers and their 415 beside a proxy route', async (t) => {
  const upstream = await hashingUpstream(t)
  const { url } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
    app.post('/in', { upstream: { cluster: 'app' } }, proxy)
    app.post('/local', async (request) => ({ parsed: request.body, type: request.headers['content-type'] }))
  })
  assert.equal((await send(`${url}/local`, 'POST', { 'content-type': 'text/csv' }, Buffer.from('a,b'))).status, 415)
  assert.equal((await send(`${url}/local`, 'POST', { 'content-type': ';;;' }, Buffer.from('x'))).status, 415)
  const json = await send(`${url}/local`, 'POST', { 'content-type': 'application/json' }, Buffer.from('{"a":1}'))
  assert.deepEqual(JSON.parse(json.body), { parsed: { a: 1 }, type: 'application/json' })
  assert.equal((await send(`${url}/in`, 'POST', { 'content-type': 'text/csv' }, Buffer.from('a,b'))).status, 200)
  assert.equal(upstream.seen.length, 1, 'only the proxy route reached the upstream')
})

test('hooks of a proxy route see the request\'s Content-Type while its body streams', async (t) => {
  const upstream = await hashingUpstream(t)
  const seenByHooks: string[] = []
  const { url } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
    app.addHook('preValidation', async (request) => { seenByHooks.push(`preValidation ${String(request.headers['content-type'])}`) })
    app.post('/in', {
      upstream: { cluster: 'app' },
      preHandler: async (request) => { seenByHooks.push(`preHandler ${String(request.headers['content-type'])} ${String(request.headers['content-length'])}`) }
    }, proxy)
  })
  const res = await send(`${url}/in`, 'POST', { 'content-type': 'text/csv', 'content-length': '3' }, Buffer.from('a,b'))
  assert.equal(res.status, 200)
  assert.deepEqual(seenByHooks, ['preValidation text/csv', 'preHandler text/csv 3'])
})

test('a 50 MiB body is streamed upstream with the proxy holding a bounded amount while the upstream does not read', { timeout: 120_000 }, async (t) => {
  const TOTAL = 50 * 1024 * 1024
  let upstreamRequest!: http.IncomingMessage
  let upstreamResponse!: http.ServerResponse
  let received = 0
  let allA = true
  const A = Buffer.alloc(64 * 1024, 0x61)
  let arrive!: () => void
  const arrived = new Promise<void>((resolve) => { arrive = resolve })
  const server = http.createServer((req, res) => {
    upstreamRequest = req
    upstreamResponse = res
    // Not read until the test says so: the whole path must fill up and stop the client.
    req.pause()
    req.on('data', (c: Buffer) => {
      if (allA && !c.equals(A.subarray(0, c.length))) allA = false
      received += c.length
    })
    req.on('end', () => res.end(String(received)))
    arrive()
  })
  const upstreamPort = await listen(t, server)
  const { port, app } = await startProxy(t, { clusters: { app: cluster(upstreamPort) } }, (app) => {
    app.post('/big', { upstream: { cluster: 'app' } }, proxy)
  })
  const sockets = watchProxySockets(t, app)
  const client = await rawClient(t, port, `POST /big HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: ${TOTAL}\r\n\r\n`)
  const down = sockets.downstream()
  let up: net.Socket | undefined
  let maxHeld = 0
  const sample = (): void => {
    // undici writes the request head with the first body bytes: the upstream connection comes with them.
    if (up === undefined) { try { up = sockets.upstream(upstreamPort) } catch { return } }
    maxHeld = Math.max(maxHeld, heldBetween(down, up))
  }
  // Streaming: the request reaches the upstream with its first body bytes, long before the body is complete.
  client.socket.write(A)
  await arrived
  const stalled = await flood(client.socket, TOTAL - A.length, sample, down)
  assert.ok(stalled.stalled, 'the client sent all 50 MiB while the upstream read nothing')
  assert.ok(up !== undefined)
  assert.ok(maxHeld <= 4 * 1024 * 1024, `the proxy held ${maxHeld} bytes of the body`)
  // The upstream reads now: everything else flows, and the proxy never holds more than before.
  upstreamRequest.resume()
  let written = stalled.written + A.length
  while (written < TOTAL) {
    written += A.length
    sample()
    if (!client.socket.write(A)) await once(client.socket, 'drain')
  }
  const head = await client.head()
  await client.until((d) => { const h = parseHead(d); return h !== null && h.rest.toString() === String(TOTAL) })
  assert.equal(head.status, 200)
  assert.equal(received, TOTAL)
  assert.ok(allA, 'the body arrived altered')
  assert.ok(maxHeld <= 4 * 1024 * 1024, `the proxy held ${maxHeld} bytes of the body`)
  assert.ok(upstreamResponse.writableEnded)
})

test('a retried request sends its whole body again', async (t) => {
  const body = randomBytes(300_000)
  const upstream = await hashingUpstream(t, (i) => i === 0 ? 503 : 200)
  const { url, app } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
    app.put('/in', { upstream: { cluster: 'app', retries: { numRetries: 1, retryOn: ['5xx'] } } }, proxy)
  })
  const res = await send(`${url}/in`, 'PUT', { 'content-type': 'application/octet-stream' }, body)
  assert.equal(res.status, 200)
  assert.equal(upstream.seen.length, 2)
  for (const seen of upstream.seen) assert.equal(seen.sha256, sha256(body))
  assert.equal(stat(app, 'cluster.app.upstream_rq_retry'), 1)
})

test('a body larger than the retry buffer is streamed but not retried (Envoy\'s retry_or_shadow_abandoned)', async (t) => {
  const body = randomBytes(3 * 1024 * 1024)
  const upstream = await hashingUpstream(t, (i) => i === 0 ? 503 : 200)
  const { url, app } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
    app.put('/in', { upstream: { cluster: 'app', retries: { numRetries: 1, retryOn: ['5xx'] } } }, proxy)
  })
  const res = await send(`${url}/in`, 'PUT', { 'content-type': 'application/octet-stream' }, body)
  assert.equal(res.status, 503, 'the first answer is relayed')
  assert.equal(upstream.seen.length, 1)
  assert.equal(upstream.seen[0]!.sha256, sha256(body))
  assert.equal(stat(app, 'cluster.app.retry_or_shadow_abandoned'), 1)
  assert.equal(stat(app, 'cluster.app.upstream_rq_retry'), 0)
})

test('an HTTP/2 request body without a content-length is streamed upstream byte for byte', async (t) => {
  const upstream = await hashingUpstream(t)
  const app = Fastify({ http2: true }) as unknown as FastifyInstance
  t.after(() => app.close())
  await app.register(switchyard, { clusters: { app: cluster(upstream.port) } })
  app.post('/in', { upstream: { cluster: 'app' } }, proxy)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const session = http2.connect(`http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`)
  t.after(() => session.destroy())
  const body = randomBytes(150_000)
  const stream = session.request({ ':method': 'POST', ':path': '/in', 'content-type': 'text/csv' })
  stream.end(body)
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  stream.resume()
  await once(stream, 'end')
  assert.equal(headers[':status'], 200)
  assert.equal(upstream.seen[0]!.sha256, sha256(body))
  assert.equal(upstream.seen[0]!.contentType, 'text/csv')
})
