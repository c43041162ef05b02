import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy, type Filter } from '@switchyard/core'
import { startProxy, cluster, stat } from '../helpers/start-proxy.ts'
import { rawUpgradeEcho, headerOf, headerNames } from '../helpers/echo-upstream.ts'
import { rawClient } from '../helpers/raw-client.ts'

const H2C = 'GET /app HTTP/1.1\r\nHost: front.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nAccept: text/plain\r\n\r\n'

test('strips an h2c upgrade with HTTP2-Settings and its Connection tokens and proxies a plain request', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const seen: Array<string | null> = []
  const recorder: Filter = { name: 'recorder', onRequestHeaders (ctx) { seen.push(ctx.upgradeType) } }
  const { port, app } = await startProxy(t, { clusters: { app: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }], filters: [recorder] }, (app) => {
    app.get('/app', { upstream: { cluster: 'app' } }, proxy)
  })
  const client = await rawClient(t, port, H2C)
  const head = await client.headAnd('plain GET /app'.length)
  assert.equal(head.status, 200)
  assert.equal(head.rest.toString(), 'plain GET /app')
  const upstreamHead = upstream.heads[0]!
  const names = headerNames(upstreamHead)
  assert.ok(!names.includes('upgrade'), `upgrade reached the upstream:\n${upstreamHead}`)
  assert.ok(!names.includes('http2-settings'), `http2-settings reached the upstream:\n${upstreamHead}`)
  const connection = headerOf(upstreamHead, 'connection') ?? ''
  assert.doesNotMatch(connection, /upgrade|http2-settings/i)
  assert.equal(headerOf(upstreamHead, 'accept'), 'text/plain')
  assert.deepEqual(seen, [null])
  assert.equal(stat(app, 'downstream_cx_upgrades_total'), 0)
  assert.equal(stat(app, 'downstream_rq_ws_on_non_ws_route'), 0)
})

test('never tunnels h2c even when a route enables it', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { port, app } = await startProxy(t, { clusters: { app: cluster(upstream.port) } }, (app) => {
    app.get('/app', { upstream: { cluster: 'app' }, upgradeConfigs: [{ upgradeType: 'h2c', enabled: true }] }, proxy)
  })
  const client = await rawClient(t, port, H2C)
  const head = await client.head()
  assert.equal(head.status, 200)
  assert.equal(headerOf(upstream.heads[0]!, 'upgrade'), undefined)
  assert.equal(stat(app, 'downstream_cx_upgrades_total'), 0)
})

test('serves an h2c upgrade to a local route without the upgrade headers', async (t) => {
  const { port } = await startProxy(t, {}, (app) => {
    app.get('/local', async (request) => ({
      upgrade: request.headers.upgrade ?? null,
      settings: request.headers['http2-settings'] ?? null,
      connection: request.headers.connection ?? null
    }))
  })
  const client = await rawClient(t, port, H2C.replace('/app', '/local'))
  const head = await client.head()
  assert.equal(head.status, 200)
  const length = Number(head.headers['content-length'])
  const full = await client.headAnd(length)
  const body = JSON.parse(full.rest.subarray(0, length).toString()) as Record<string, string | null>
  assert.equal(body.upgrade, null)
  assert.equal(body.settings, null)
  assert.doesNotMatch(body.connection ?? '', /upgrade|http2-settings/i)
})
