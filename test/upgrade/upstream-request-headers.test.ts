import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy } from '@switchyard/core'
import { startProxy, cluster } from '../helpers/start-proxy.ts'
import { rawUpgradeEcho, headerOf, headerNames } from '../helpers/echo-upstream.ts'
import { rawClient } from '../helpers/raw-client.ts'

async function setup (t: Parameters<typeof rawUpgradeEcho>[0]) {
  const upstream = await rawUpgradeEcho(t)
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.post('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  return { upstream, port }
}

test('keeps Upgrade and Connection and drops Transfer-Encoding, Keep-Alive and Proxy-Connection upstream', async (t) => {
  const { upstream, port } = await setup(t)
  const client = await rawClient(t, port,
    'POST /foo HTTP/1.1\r\nHost: front.example\r\nConnection: keep-alive, Upgrade\r\nUpgrade: foo\r\n' +
    'Transfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Custom: kept\r\n\r\n')
  assert.equal((await client.head()).status, 101)
  const head = upstream.heads[0]!
  const names = headerNames(head)
  assert.equal(headerOf(head, 'upgrade'), 'foo')
  assert.ok((headerOf(head, 'connection') ?? '').split(',').some((v) => v.trim().toLowerCase() === 'upgrade'), head)
  for (const dropped of ['transfer-encoding', 'keep-alive', 'proxy-connection', 'content-length']) {
    assert.ok(!names.includes(dropped), `${dropped} reached the upstream:\n${head}`)
  }
  assert.equal(headerOf(head, 'x-custom'), 'kept')
  assert.equal(headerOf(head, 'host'), 'front.example')
})

test('forwards Content-Length as sent and the body bytes after the head as payload', async (t) => {
  const { upstream, port } = await setup(t)
  const client = await rawClient(t, port,
    'POST /foo HTTP/1.1\r\nHost: front.example\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 5\r\n\r\nhello')
  const head = await client.headAnd(5)
  assert.equal(head.status, 101)
  assert.equal(head.rest.toString(), 'hello')
  assert.equal(headerOf(upstream.heads[0]!, 'content-length'), '5')
  assert.equal(headerNames(upstream.heads[0]!).filter((n) => n === 'content-length').length, 1)
  assert.equal(headerOf(upstream.heads[0]!, 'transfer-encoding'), undefined)
})

test('adds only x-forwarded-for and x-forwarded-proto to an upgrade request', async (t) => {
  const { upstream, port } = await setup(t)
  const sent: Record<string, string> = { Host: 'front.example', Connection: 'Upgrade', Upgrade: 'foo', 'X-One': '1', Accept: '*/*' }
  const client = await rawClient(t, port, `POST /foo?q=1 HTTP/1.1\r\n${Object.entries(sent).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
  assert.equal((await client.head()).status, 101)
  const head = upstream.heads[0]!
  assert.match(head, /^POST \/foo\?q=1 HTTP\/1\.1\r\n/)
  const added = headerNames(head).filter((n) => !Object.keys(sent).map((k) => k.toLowerCase()).includes(n))
  assert.deepEqual(added.sort(), ['x-forwarded-for', 'x-forwarded-proto'])
  assert.equal(headerOf(head, 'x-forwarded-for'), '127.0.0.1')
  assert.equal(headerOf(head, 'x-forwarded-proto'), 'http')
})

test('appends the client address to an x-forwarded-for the client sent', async (t) => {
  const { upstream, port } = await setup(t)
  const client = await rawClient(t, port,
    'POST /foo HTTP/1.1\r\nHost: front.example\r\nConnection: Upgrade\r\nUpgrade: foo\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n')
  assert.equal((await client.head()).status, 101)
  assert.equal(headerOf(upstream.heads[0]!, 'x-forwarded-for'), '203.0.113.7, 127.0.0.1')
})
