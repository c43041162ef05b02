import { test } from 'node:test'
import assert from 'node:assert/strict'
import { echo, h2Session, extendedConnect, openWs, startEchoApp, startNode, watchHttp2 } from '../helpers/h2-mesh.ts'
import { selfSigned } from '../helpers/h2-tls.ts'
import { havePeers } from '../helpers/peers.ts'

test('carries a WebSocket across a TLS HTTP/2 hop negotiated with ALPN h2', async (t) => {
  if (!havePeers(t, 'openssl')) return
  const tls = selfSigned()
  t.after(() => tls.cleanup())
  const echoApp = await startEchoApp(t)
  const sidecar = await startNode(t, { listen: 'tls', tls, upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1' })
  const watch = watchHttp2(sidecar.app.server)
  const front = await startNode(t, {
    listen: 'http1', upstream: `https://127.0.0.1:${sidecar.port}`, upstreamProtocol: 'http2', upstreamTls: { ca: tls.cert }
  })
  const ws = await openWs(t, `ws://127.0.0.1:${front.port}/ws/tls`)
  assert.equal(await echo(ws, 'over tls h2'), 'over tls h2')
  assert.equal(watch.connects[0]?.[':scheme'], 'https')
  assert.equal(watch.sessions[0]?.alpnProtocol, 'h2')
})

test('keeps HTTP/1.1 WebSocket clients working on a TLS sidecar with allowHTTP1', async (t) => {
  if (!havePeers(t, 'openssl')) return
  const tls = selfSigned()
  t.after(() => tls.cleanup())
  const echoApp = await startEchoApp(t)
  const sidecar = await startNode(t, { listen: 'tls', tls, upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1' })
  const ws = await openWs(t, `wss://127.0.0.1:${sidecar.port}/ws/h1`, { ca: tls.cert })
  assert.equal(await echo(ws, 'h1 over tls'), 'h1 over tls')
  const session = await h2Session(t, sidecar.origin, { ca: tls.cert })
  const { headers } = await extendedConnect(session, '/raw/h2', 'foo')
  assert.equal(headers[':status'], 200)
})

test('sends plain requests to an http2 cluster over TLS HTTP/2', async (t) => {
  if (!havePeers(t, 'openssl')) return
  const tls = selfSigned()
  t.after(() => tls.cleanup())
  const echoApp = await startEchoApp(t)
  let version = ''
  const sidecar = await startNode(t, {
    listen: 'tls', tls, upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1',
    routes: (app) => app.addHook('onRequest', async (request) => { version = request.raw.httpVersion })
  })
  const front = await startNode(t, {
    listen: 'http1', upstream: `https://127.0.0.1:${sidecar.port}`, upstreamProtocol: 'http2', upstreamTls: { ca: tls.cert }
  })
  const res = await fetch(`http://127.0.0.1:${front.port}/plain?x=1`)
  assert.equal(res.status, 200)
  const body = await res.json() as { url: string }
  assert.equal(body.url, '/plain?x=1')
  assert.equal(version, '2.0')
})

test('sends plain requests to an http2 cluster over h2c', async (t) => {
  const echoApp = await startEchoApp(t)
  let version = ''
  const sidecar = await startNode(t, {
    listen: 'h2c', upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1',
    routes: (app) => app.addHook('onRequest', async (request) => { version = request.raw.httpVersion })
  })
  const front = await startNode(t, { listen: 'http1', upstream: sidecar.origin, upstreamProtocol: 'http2' })
  const res = await fetch(`http://127.0.0.1:${front.port}/plain?x=2`)
  assert.equal(res.status, 200)
  const body = await res.json() as { url: string }
  assert.equal(body.url, '/plain?x=2')
  assert.equal(version, '2.0')
})
