import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { proxy } from '@switchyard/core'
import { startProxy } from '../helpers/start-proxy.ts'
import { rawClient, wsUpgradeHead, parseHead } from '../helpers/raw-client.ts'
import { startNode } from '../helpers/h2-mesh.ts'
import { gaugesAtZero, watchHandles } from '../helpers/leak-check.ts'
import net from 'node:net'
import { listen } from '../helpers/net.ts'

/** Accepts connections and never answers (the handshake hangs); reads, so it sees the proxy's FIN. */
async function silentUpstream (t: TestContext): Promise<{ port: number, sockets: net.Socket[] }> {
  const sockets: net.Socket[] = []
  const server = net.createServer((s) => { s.on('error', () => {}); s.resume(); sockets.push(s) })
  return { port: await listen(t, server), sockets }
}

// Envoy: the route timeout covers the handshake only; no answer within it → 504, and the upstream
// connection is closed with the stream. (Legacy routes refuse `upstream.timeout`, as Envoy's
// `use_websocket` did: SWY_ERR_WSTCP_TIMEOUT.)
test('a slow HTTP/1.1 upstream handshake gets 504 at the route timeout and frees everything (new style)', { timeout: 10_000 }, async (t) => {
  const watch = watchHandles()
  const upstream = await silentUpstream(t)
  const { app, port } = await startProxy(t, { clusters: { up: { endpoints: [`127.0.0.1:${upstream.port}`] } }, upgradeConfigs: [{ upgradeType: 'websocket' }] }, (app) => {
    app.get('/*', { upstream: { cluster: 'up', timeout: 200 } }, proxy)
  })
  await watch.mark()
  const client = await rawClient(t, port, wsUpgradeHead('/slow'))
  await client.done
  client.socket.end()
  assert.equal(parseHead(client.received)?.status, 504)
  await watch.settled()
  await gaugesAtZero([app])
  assert.equal(upstream.sockets.length, 1)
})

test('a slow sidecar (no answer to the extended CONNECT) gets 504 at the front\'s route timeout and frees everything', { timeout: 10_000 }, async (t) => {
  const watch = watchHandles()
  const server = http2.createServer({ settings: { enableConnectProtocol: true } })
  const streams: http2.ServerHttp2Stream[] = []
  server.on('stream', (stream) => { stream.on('error', () => {}); streams.push(stream) })
  const sessions: http2.ServerHttp2Session[] = []
  server.on('session', (s) => { sessions.push(s); s.on('error', () => {}) })
  t.after(() => { for (const s of sessions) s.destroy() })
  const peerPort = await listen(t, server)
  const front = await startNode(t, {
    listen: 'http1',
    upstream: `127.0.0.1:${peerPort}`,
    upstreamProtocol: 'http2',
    routes: (app) => app.get('/slow', { upstream: { cluster: 'mesh', timeout: 200 } }, proxy)
  })
  await watch.mark()
  const client = await rawClient(t, front.port, wsUpgradeHead('/slow'))
  await client.done
  client.socket.end()
  assert.equal(parseHead(client.received)?.status, 504)
  assert.equal(streams.length, 1)
  // The abandoned stream is reset (RST_STREAM CANCEL), so the peer may free it.
  if (!streams[0]!.closed) await new Promise((resolve) => streams[0]!.once('close', resolve))
  assert.notEqual(streams[0]!.rstCode, undefined)
  const pooled = new Set(watch.sockets.filter((s) => !s.destroyed && (s.remotePort === peerPort || s.localPort === peerPort)))
  await watch.settled({ keep: (s) => pooled.has(s), extra: pooled.size })
  await gaugesAtZero([front.app])
})
