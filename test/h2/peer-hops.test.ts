import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { echo, openWs, startEchoApp, startNode, watchHttp2 } from '../helpers/h2-mesh.ts'
import { startHaproxy, startNghttpx, type PeerOptions } from '../helpers/h2-peers.ts'
import { havePeers } from '../helpers/peers.ts'

// Each hop against each third-party HTTP/2 peer: RFC 8441 as HAProxy and nghttpx speak it, both ways.
const peers: Array<{ name: string, binary: 'haproxy' | 'nghttpx', start: (t: TestContext, options: PeerOptions) => Promise<number> }> = [
  { name: 'HAProxy', binary: 'haproxy', start: startHaproxy },
  { name: 'nghttpx', binary: 'nghttpx', start: startNghttpx }
]

for (const peer of peers) {
  const slug = peer.binary

  test(`carries a WebSocket from a Switchyard front through ${peer.name} (HTTP/2 in, HTTP/1.1 out) to the app`, async (t) => {
    if (!havePeers(t, peer.binary)) return
    const echoApp = await startEchoApp(t)
    const peerPort = await peer.start(t, { shape: 'h2-in-h1-out', backendPort: echoApp.port })
    const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${peerPort}`, upstreamProtocol: 'http2' })
    const seen = echoApp.next()
    const ws = await openWs(t, `ws://127.0.0.1:${front.port}/ws/via-${slug}`)
    assert.equal(await echo(ws, `front to ${slug}`), `front to ${slug}`)
    assert.equal(await echo(ws, 'y'.repeat(100_000)), 'y'.repeat(100_000))
    const app = await seen
    assert.equal(app.method, 'GET')
    assert.equal(app.headers.upgrade?.toLowerCase(), 'websocket')
    const closed = once(ws, 'close')
    ws.close(1000)
    assert.equal((await closed)[0], 1000)
  })

  test(`carries a WebSocket from ${peer.name} (HTTP/1.1 in, HTTP/2 out) through a Switchyard sidecar to the app`, async (t) => {
    if (!havePeers(t, peer.binary)) return
    const echoApp = await startEchoApp(t)
    const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1' })
    const watch = watchHttp2(sidecar.app.server)
    const peerPort = await peer.start(t, { shape: 'h1-in-h2-out', backendPort: sidecar.port })
    const ws = await openWs(t, `ws://127.0.0.1:${peerPort}/ws/from-${slug}`)
    assert.equal(await echo(ws, `${slug} to sidecar`), `${slug} to sidecar`)
    assert.equal(await echo(ws, 'z'.repeat(100_000)), 'z'.repeat(100_000))
    assert.equal(watch.connects[0]?.[':method'], 'CONNECT')
    assert.equal(watch.connects[0]?.[':protocol'], 'websocket')
    const closed = once(ws, 'close')
    ws.close(1000)
    assert.equal((await closed)[0], 1000)
  })
}
