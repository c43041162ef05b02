import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { proxy, type Filter } from '@switchyard/core'
import { createBufferFilter } from '@switchyard/filters'
import { startProxy, cluster, stat } from '../helpers/start-proxy.ts'
import { httpUpstream, type SeenRequest } from '../helpers/http-upstream.ts'
import { freePort } from '../helpers/net.ts'

interface Echo { name: string, method: string, url: string, headers: Record<string, string>, body: string }

async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
  })
}

async function getJson (url: string, headers: Record<string, string> = {}): Promise<Echo> {
  const res = await get(url, headers)
  assert.equal(res.status, 200, res.body)
  return JSON.parse(res.body) as Echo
}

test('proxies a plain GET and POST upstream with the body, method and query', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const { url } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
    app.get('/things', { upstream: { cluster: 'app' } }, proxy)
    app.post('/things', { upstream: { cluster: 'app' } }, proxy)
  })
  const seen = await getJson(`${url}/things?a=1`)
  assert.equal(seen.url, '/things?a=1')
  const res = await fetch(`${url}/things`, { method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json' } })
  const posted = await res.json() as Echo
  assert.equal(posted.method, 'POST')
  assert.equal(posted.body, '{"x":1}')
  assert.equal(posted.headers['x-forwarded-for'], '127.0.0.1')
})

test('rewrites the matched prefix of the path and keeps the query', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const { url } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
    app.get('/api/*', { upstream: { cluster: 'app', prefixRewrite: '/v2/' } }, proxy)
  })
  const seen = await getJson(`${url}/api/items/7?full=yes`)
  assert.equal(seen.url, '/v2/items/7?full=yes')
})

test('keeps the client Host without a rewrite, sets a literal hostRewrite, and the endpoint with autoHostRewrite', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const { url } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
    app.get('/plain', { upstream: { cluster: 'app' } }, proxy)
    app.get('/literal', { upstream: { cluster: 'app', hostRewrite: 'internal.example' } }, proxy)
    app.get('/auto', { upstream: { cluster: 'app', autoHostRewrite: true } }, proxy)
  })
  assert.equal((await getJson(`${url}/plain`, { host: 'front.example' })).headers.host, 'front.example')
  assert.equal((await getJson(`${url}/literal`, { host: 'front.example' })).headers.host, 'internal.example')
  assert.equal((await getJson(`${url}/auto`, { host: 'front.example' })).headers.host, `127.0.0.1:${upstream.port}`)
})

test('splits traffic between weighted clusters', async (t) => {
  const a = await httpUpstream(t, 'a')
  const b = await httpUpstream(t, 'b')
  const { url } = await startProxy(t, { clusters: { a: cluster(a.port), b: cluster(b.port) } }, (app) => {
    app.get('/none-to-a', { upstream: { weightedClusters: [{ cluster: 'a', weight: 0 }, { cluster: 'b', weight: 100 }] } }, proxy)
    app.get('/half', { upstream: { weightedClusters: [{ cluster: 'a', weight: 50 }, { cluster: 'b', weight: 50 }] } }, proxy)
  })
  for (let i = 0; i < 40; i++) assert.equal((await getJson(`${url}/none-to-a`)).name, 'b')
  const counts = { a: 0, b: 0 }
  for (let i = 0; i < 200; i++) counts[(await getJson(`${url}/half`)).name as 'a' | 'b']++
  assert.ok(counts.a > 40 && counts.b > 40, `50/50 split came out ${counts.a}/${counts.b}`)
})

test('shifts traffic with a runtime fraction set at run time, without a restart', async (t) => {
  const primary = await httpUpstream(t, 'primary')
  const fallback = await httpUpstream(t, 'fallback')
  const { url, app } = await startProxy(t, { clusters: { primary: cluster(primary.port), fallback: cluster(fallback.port) } }, (app) => {
    app.get('/shift', { upstream: { cluster: 'primary', runtimeFraction: { runtimeKey: 'shift.primary', defaultPercent: 100, fallbackCluster: 'fallback' } } }, proxy)
  })
  const names = async (n: number): Promise<Set<string>> => {
    const out = new Set<string>()
    for (let i = 0; i < n; i++) out.add((await getJson(`${url}/shift`)).name)
    return out
  }
  assert.deepEqual(await names(20), new Set(['primary']))
  app.switchyard.runtime.set('shift.primary', 0)
  assert.equal(app.switchyard.runtime.get('shift.primary'), 0)
  assert.deepEqual(await names(20), new Set(['fallback']))
  app.switchyard.runtime.set('shift.primary', 100)
  assert.deepEqual(await names(20), new Set(['primary']))
})

test('answers 504 when the upstream does not answer a plain request within the route timeout', async (t) => {
  const upstream = await httpUpstream(t, 'slow', () => true)
  const { url, app } = await startProxy(t, { clusters: { slow: cluster(upstream.port) } }, (app) => {
    app.get('/slow', { upstream: { cluster: 'slow', timeout: 150 } }, proxy)
  })
  const res = await get(`${url}/slow`)
  assert.equal(res.status, 504)
  assert.equal(stat(app, 'cluster.slow.upstream_rq_timeout'), 1)
})

test('retries a plain request answered 503 and returns the retry answer', async (t) => {
  const upstream = await httpUpstream(t, 'flaky', (_req, res, index) => {
    if (index > 0) return false
    res.statusCode = 503
    res.end('try again')
    return true
  })
  const { url, app } = await startProxy(t, { clusters: { flaky: cluster(upstream.port) } }, (app) => {
    app.get('/flaky', { upstream: { cluster: 'flaky', retries: { numRetries: 2, retryOn: ['5xx'] } } }, proxy)
  })
  const seen = await getJson(`${url}/flaky`)
  assert.equal(seen.name, 'flaky')
  assert.equal(upstream.requests.length, 2)
  assert.equal(stat(app, 'cluster.flaky.upstream_rq_retry'), 1)
})

test('retries a plain request on a connect failure to another endpoint of the cluster', async (t) => {
  const live = await httpUpstream(t, 'live')
  const dead = await freePort()
  const { url } = await startProxy(t, { clusters: { mixed: { endpoints: [`127.0.0.1:${dead}`, `127.0.0.1:${live.port}`] } } }, (app) => {
    app.get('/mixed', { upstream: { cluster: 'mixed', retries: { numRetries: 1, retryOn: ['connect-failure'] } } }, proxy)
  })
  for (let i = 0; i < 4; i++) assert.equal((await getJson(`${url}/mixed`)).name, 'live')
})

test('sends a fire-and-forget copy of the request to the mirror cluster', async (t) => {
  const main = await httpUpstream(t, 'main')
  let mirrored!: (req: SeenRequest) => void
  const copy = new Promise<SeenRequest>((resolve) => { mirrored = resolve })
  const shadow = await httpUpstream(t, 'shadow', (req, res) => {
    res.statusCode = 500
    res.end('ignored')
    mirrored(req)
    return true
  })
  const { url } = await startProxy(t, { clusters: { main: cluster(main.port), shadow: cluster(shadow.port) } }, (app) => {
    app.post('/m', { upstream: { cluster: 'main', mirror: { cluster: 'shadow' } } }, proxy)
  })
  const res = await fetch(`${url}/m?k=v`, { method: 'POST', body: 'copy me', headers: { 'content-type': 'text/plain' } })
  assert.equal(res.status, 200)
  assert.equal((await res.json() as Echo).name, 'main')
  const req = await copy
  assert.equal(req.method, 'POST')
  assert.equal(req.url, '/m?k=v')
  assert.equal(req.body, 'copy me')
  assert.equal(main.requests.length, 1)
  assert.equal(shadow.requests.length, 1)
})

test('redirects a plain request as the route redirect says', async (t) => {
  const { url } = await startProxy(t, {}, (app) => {
    app.get('/old', { redirect: { pathRedirect: '/new', responseCode: 302 } }, async () => 'not redirected')
    app.get('/moved', { redirect: { hostRedirect: 'other.example', schemeRedirect: 'https' } }, async () => 'not redirected')
  })
  const res = await get(`${url}/old?q=1`, { host: 'front.example' })
  assert.equal(res.status, 302)
  assert.equal(res.headers.location, 'http://front.example/new?q=1')
  const moved = await get(`${url}/moved?q=2`, { host: 'front.example' })
  assert.equal(moved.status, 301)
  assert.equal(moved.headers.location, 'https://other.example/moved?q=2')
})

/** Sends `head` and `body` on a fresh socket; resolves with everything received once the proxy closes it. */
async function rawRequest (port: number, head: string, body: Buffer): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  socket.write(head)
  socket.write(body)
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
  socket.on('error', () => {})
  await once(socket, 'close')
  return received
}

test('passes a GET body (which Fastify leaves unread) through the chain and on to the upstream', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const seen: string[] = []
  const watcher: Filter = { name: 'watcher', onRequestData (_ctx, chunk, end) { seen.push(`${chunk.toString()}|${String(end)}`) } }
  const { url } = await startProxy(t, { clusters: { app: cluster(upstream.port) }, filters: [watcher] }, (app) => {
    app.get('/things', { upstream: { cluster: 'app' } }, proxy)
  })
  const answer = await rawRequest(Number(new URL(url).port), 'GET /things HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\nconnection: close\r\n\r\n', Buffer.from('hello there'))
  assert.match(answer, /^HTTP\/1\.1 200 /)
  assert.equal(seen.join(''), 'hello there|false|true')
  assert.equal(upstream.requests[0]?.body, 'hello there')
})

test('a buffer filter answers 413 to a plain request with a body over its limit and the connection closes (Envoy\'s WebsocketCustomFilterChain)', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const { url } = await startProxy(t, {
    clusters: { app: cluster(upstream.port) },
    filters: [createBufferFilter({ maxRequestBytes: 1024 })]
  }, (app) => {
    app.get('/', { upstream: { cluster: 'app' } }, proxy)
  })
  const port = Number(new URL(url).port)
  // No `connection: close` from the client: the proxy must close the connection itself.
  const answer = await rawRequest(port, 'GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 2048\r\n\r\n', Buffer.alloc(2048, 'a'))
  assert.match(answer, /^HTTP\/1\.1 413 /)
  assert.match(answer, /\r\nconnection: close\r\n/i)
  assert.equal(upstream.requests.length, 0)
})

test('a GET body over the route\'s bodyLimit gets 413 without reaching the upstream', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const { url } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
    app.get('/small', { upstream: { cluster: 'app' }, bodyLimit: 100 }, proxy)
  })
  const answer = await rawRequest(Number(new URL(url).port), 'GET /small HTTP/1.1\r\nhost: x\r\ncontent-length: 200\r\n\r\n', Buffer.alloc(200, 'b'))
  assert.match(answer, /^HTTP\/1\.1 413 /)
  assert.equal(upstream.requests.length, 0)
})

test('a filter that rewrites a plain response body gets the new length framed for the client', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  let replaced = false
  const shorten: Filter = {
    name: 'shorten',
    onResponseData (ctx, chunk) {
      if (chunk.length === 0) return
      ctx.replaceData(replaced ? Buffer.alloc(0) : Buffer.from('short'))
      replaced = true
    }
  }
  const { url } = await startProxy(t, { clusters: { app: cluster(upstream.port) }, filters: [shorten] }, (app) => {
    app.get('/things', { upstream: { cluster: 'app' } }, proxy)
  })
  const res = await fetch(`${url}/things`)
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-length'), null)
  assert.equal(await res.text(), 'short')
})
