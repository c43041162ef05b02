import { test } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Cluster, parseEndpoint, Stats, type UpgradeEvents } from '@switchyard/core/internal'
import { Http2ConnectTransport } from '../src/http2-connect-transport.ts'
import { GeneratedKeys } from '../src/websocket-key.ts'

const silentLog = { info () {}, warn () {}, error () {}, debug () {}, trace () {}, fatal () {}, child () { return silentLog }, level: 'silent' }

/** An h2c peer that accepts extended CONNECT and counts the streams it is sent. */
async function peer (t: Parameters<Parameters<typeof test>[1]>[0]): Promise<{ port: number, streams: () => number }> {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } })
  let streams = 0
  server.on('stream', (stream) => { streams++; stream.respond({ ':status': 200 }) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.address() as AddressInfo).port, streams: () => streams }
}

test('a request header Node\'s HTTP/2 client refuses is the request\'s fault: 400, never a session failure or a retry', async (t) => {
  const stats = new Stats()
  const transport = new Http2ConnectTransport({ log: silentLog as never, stats, preserveMethod: false, keys: new GeneratedKeys() })
  // Before the peer's own teardown, which waits for this side's connection to close.
  t.after(() => transport.close())
  const { port, streams } = await peer(t)
  const cluster = new Cluster('app', { endpoints: [`127.0.0.1:${port}`], protocol: 'http2' }, { stats, log: silentLog })
  t.after(() => cluster.close())
  const failed = new Promise<[Error & { code?: string, statusCode?: number }, string]>((resolve) => {
    const events: UpgradeEvents = {
      accepted () { resolve([new Error('accepted'), 'accepted']) },
      response () { resolve([new Error('response'), 'response']) },
      failed (error, phase) { resolve([error, phase]) }
    }
    transport.open({
      cluster,
      endpoint: parseEndpoint(`127.0.0.1:${port}`),
      method: 'GET',
      path: '/',
      upgradeType: 'foo',
      // One single-value field twice under two spellings: Node's HTTP/2 client refuses the set (a filter that
      // broke the lower-case contract of `Headers` could hand over such a set; nothing else can).
      headers: { host: 'app.test', upgrade: 'foo', connection: 'upgrade', 'user-agent': 'a', 'User-Agent': 'b' }
    }, events)
  })
  const [error, phase] = await failed
  assert.equal(phase, 'protocol')
  assert.equal(error.code, 'SWY_ERR_H2_REQUEST_HEADER')
  assert.equal(error.statusCode, 400)
  assert.equal(streams(), 0, 'nothing was sent')
  assert.equal(stats.get('cluster.app.upstream_rq_retry'), 0)
})
