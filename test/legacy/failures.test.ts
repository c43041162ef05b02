import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy } from '@switchyard/core'
import { appStateOf } from '@switchyard/core/internal'
import { blackholePort, captureLogs, legacyCloses, rawUpstream, readHead, startLegacyProxy } from '../helpers/legacy-net.ts'
import { rawTextClient, wsUpgradeHead } from '../helpers/raw-client.ts'
import { freePort } from '../helpers/net.ts'

for (const trustUpstream of [false, true]) {
  const mode = trustUpstream ? 'with trustUpstream' : 'by default'
  test(`answers 504 with a coded log line when the endpoint refuses the connection (Envoy's legacy handler), ${mode}`, async (t) => {
    const dead = await freePort()
    const logs = captureLogs()
    const { port, app } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${dead}`] } } }, (app) => {
      app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
    }, { trustUpstream }, { logger: logs.logger })
    const closes = legacyCloses(t)
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
    await client.closed
    assert.match(client.received, /^HTTP\/1\.1 504 Gateway Timeout\r\n/)
    assert.match(client.received, /\r\nconnection: close\r\n/i)
    const line = logs.lines.find(l => l.code === 'SWY_ERR_WSTCP_CONNECT')
    assert.ok(line, 'a log line with the code')
    assert.equal(line.level, 40)
    await closes.waitFor(1)
    const stats = app.switchyard.stats()
    assert.equal(stats['cluster.c.upstream_cx_connect_fail'], 1)
    assert.equal(stats.downstream_cx_websocket_active, 0)
  })

  test(`answers 504 with a coded log line when the connect times out, ${mode}`, async (t) => {
    const blackhole = await blackholePort(t)
    const logs = captureLogs()
    const { port } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${blackhole}`], connectTimeout: 200 } } }, (app) => {
      app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
    }, { trustUpstream }, { logger: logs.logger })
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
    await client.closed
    assert.match(client.received, /^HTTP\/1\.1 504 Gateway Timeout\r\n/)
    const line = logs.lines.find(l => l.code === 'SWY_ERR_WSTCP_CONNECT_TIMEOUT')
    assert.ok(line, 'a log line with the code')
    assert.match(String((line.err as { message: string }).message), /within 200ms/)
  })
}

test('answers 503 when the chosen cluster has no endpoint left', async (t) => {
  const up = await rawUpstream(t, (s) => s.destroy())
  const { port, app } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  })
  // A cluster removed at run time (as a cluster manager update would).
  appStateOf(app)!.clusters.delete('c')
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
  await client.closed
  assert.match(client.received, /^HTTP\/1\.1 503 /)
})

test('answers 503 when the upstream closes before it answers the handshake', async (t) => {
  const up = await rawUpstream(t, async (s) => { await readHead(s); s.destroy() })
  const { port } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
  await client.closed
  assert.match(client.received, /^HTTP\/1\.1 503 /)
})

test('answers 502 when the upstream answers something that is not HTTP', async (t) => {
  const logs = captureLogs()
  const up = await rawUpstream(t, async (s) => { await readHead(s); s.write('SSH-2.0-OpenSSH_9.2\r\n\r\n') })
  const { port } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  }, {}, { logger: logs.logger })
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
  await client.closed
  assert.match(client.received, /^HTTP\/1\.1 502 /)
  assert.ok(logs.lines.some(l => l.code === 'SWY_ERR_WSTCP_BAD_RESPONSE'))
})
