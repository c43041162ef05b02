import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy } from '@switchyard/core'
import { startProxy, cluster, stat } from '../helpers/start-proxy.ts'
import { httpUpstream } from '../helpers/http-upstream.ts'
import { rawClient, parseHead } from '../helpers/raw-client.ts'

// RFC 9110 §7.8: "A server MUST ignore an Upgrade header field that is received in an HTTP/1.0 request."

test('an HTTP/1.0 request with Upgrade is proxied as a plain request and never tunnelled', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const { port, app } = await startProxy(t, { clusters: { app: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'app' } }, proxy)
  })
  const client = await rawClient(t, port, 'GET /c HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nearly bytes')
  await client.done
  const head = parseHead(client.received)!
  assert.equal(head.status, 200)
  assert.equal(JSON.parse(head.rest.toString()).method, 'GET')
  assert.equal(upstream.requests.length, 1)
  assert.equal(upstream.requests[0]!.headers.upgrade, undefined, 'the Upgrade header reached the upstream')
  assert.ok(!/upgrade/i.test(String(upstream.requests[0]!.headers.connection ?? '')), 'the upgrade Connection token reached the upstream')
  assert.equal(stat(app, 'downstream_cx_upgrades_total'), 0)
})

test('an HTTP/1.0 POST with Upgrade and a body is proxied as a plain request with its body', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const { port, app } = await startProxy(t, { clusters: { app: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
    app.post('/c', { upstream: { cluster: 'app' } }, proxy)
  })
  const body = '{"hello":"http/1.0"}'
  const client = await rawClient(t, port, `POST /c HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  await client.done
  const head = parseHead(client.received)!
  assert.equal(head.status, 200)
  assert.match(head.raw, /^HTTP\/1\.[01] 200 /)
  assert.equal(upstream.requests[0]?.body, body)
  assert.equal(upstream.requests[0]?.headers.upgrade, undefined)
  assert.equal(stat(app, 'downstream_cx_upgrades_total'), 0)
})
