import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chooseCluster, rewriteHost, rewritePath, routePrefix } from '../src/route-action.ts'
import { parseEndpoint } from '../src/cluster/endpoint.ts'
import { Runtime } from '../src/runtime.ts'

function sequence (...values: number[]): () => number {
  let i = 0
  return () => values[i++ % values.length]!
}

test('weighted clusters split by weight', () => {
  const upstream = { weightedClusters: [{ cluster: 'a', weight: 1 }, { cluster: 'b', weight: 3 }] }
  const runtime = new Runtime()
  assert.equal(chooseCluster(upstream, runtime, () => 0.2), 'a')
  assert.equal(chooseCluster(upstream, runtime, () => 0.3), 'b')
  assert.equal(chooseCluster(upstream, runtime, () => 0.99), 'b')
  const counts = { a: 0, b: 0 }
  for (let i = 0; i < 4000; i++) counts[chooseCluster(upstream, runtime, () => i / 4000) as 'a' | 'b']++
  assert.deepEqual(counts, { a: 1000, b: 3000 })
})

test('runtime fraction follows the runtime value and falls back to the default percent', () => {
  const upstream = { cluster: 'new', runtimeFraction: { runtimeKey: 'shift', defaultPercent: 0, fallbackCluster: 'old' } }
  const runtime = new Runtime()
  assert.equal(chooseCluster(upstream, runtime, sequence(0.1)), 'old')
  runtime.set('shift', 50)
  assert.equal(chooseCluster(upstream, runtime, sequence(0.1)), 'new')
  assert.equal(chooseCluster(upstream, runtime, sequence(0.6)), 'old')
  runtime.set('shift', 'not a number')
  assert.equal(chooseCluster(upstream, runtime, sequence(0.1)), 'old')
})

test('prefix rewrite replaces the static prefix of the route and keeps the query', () => {
  assert.equal(routePrefix('/api/*'), '/api/')
  assert.equal(routePrefix('/chat/:room'), '/chat/')
  assert.equal(routePrefix('/chat'), '/chat')
  assert.equal(rewritePath('/api/v1/x?y=1', '/api/', '/internal/'), '/internal/v1/x?y=1')
  assert.equal(rewritePath('/chat?a', '/chat', '/ws'), '/ws?a')
  assert.equal(rewritePath('/other', '/chat', '/ws'), '/other')
  assert.equal(rewritePath('/chat', '/chat', undefined), '/chat')
})

test('host rewrite is literal or taken from the endpoint', () => {
  const endpoint = parseEndpoint('127.0.0.1:9000')
  const h1 = { host: 'front' }
  rewriteHost(h1, { hostRewrite: 'app.internal' }, endpoint)
  assert.equal(h1.host, 'app.internal')
  const h2 = { host: 'front' }
  rewriteHost(h2, { autoHostRewrite: true }, endpoint)
  assert.equal(h2.host, '127.0.0.1:9000')
  const h3 = { host: 'front' }
  rewriteHost(h3, {}, endpoint)
  assert.equal(h3.host, 'front')
})

test('endpoints parse host:port, URLs and IPv6, and refuse paths', () => {
  assert.deepEqual(parseEndpoint('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080, secure: false, origin: 'http://127.0.0.1:8080', authority: '127.0.0.1:8080' })
  assert.equal(parseEndpoint('127.0.0.1:80').authority, '127.0.0.1', 'a default port is not written')
  assert.equal(parseEndpoint('https://example.test').port, 443)
  assert.equal(parseEndpoint('[::1]:8080').host, '::1')
  assert.throws(() => parseEndpoint('http://a:1/path'), /only a scheme, host and port/)
  assert.throws(() => parseEndpoint('ftp://a:1'), /unsupported scheme/)
})
