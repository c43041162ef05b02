import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http2 from 'node:http2'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import h2Connect from '@switchyard/h2-connect'
import {
  echo, extendedConnect, h2Session, openWs, readAll, readHead, readUntil, startEchoApp, startNode, watchHttp2, waitForGauge,
  type EchoApp, type MeshNode, type NodeOptions
} from '../helpers/h2-mesh.ts'
import { decodeFrames, maskedTextFrame } from '../helpers/h2-ws-frames.ts'
import { connect, listen } from '../helpers/net.ts'

/** An h2c sidecar in front of the app, speaking HTTP/1.1 to it. */
function sidecarOf (t: TestContext, echoApp: EchoApp, options: Partial<NodeOptions> = {}): Promise<MeshNode> {
  return startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1', ...options })
}

/** An HTTP/1.1 front whose cluster is the sidecar, over HTTP/2. */
function frontOf (t: TestContext, sidecar: MeshNode, options: Partial<NodeOptions> = {}): Promise<MeshNode> {
  return startNode(t, { listen: 'http1', upstream: sidecar.origin, upstreamProtocol: 'http2', ...options })
}

test('carries a WebSocket from an HTTP/1.1 client across an HTTP/2 hop to an HTTP/1.1 app and back', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const watch = watchHttp2(sidecar.app.server)
  const front = await frontOf(t, sidecar)

  const seen = echoApp.next()
  const ws = await openWs(t, `ws://127.0.0.1:${front.port}/ws/chat?room=1`, { headers: { 'x-trace': 'abc' } })
  assert.equal(await echo(ws, 'hello over h2'), 'hello over h2')
  assert.equal(await echo(ws, 'x'.repeat(200_000)), 'x'.repeat(200_000))

  const [connect] = watch.connects
  assert.equal(connect?.[':method'], 'CONNECT')
  assert.equal(connect?.[':protocol'], 'websocket')
  assert.equal(connect?.[':path'], '/ws/chat?room=1')
  assert.equal(connect?.[':authority'], `127.0.0.1:${front.port}`)
  assert.equal(connect?.['x-trace'], 'abc')
  assert.equal(connect?.upgrade, undefined)
  assert.equal(connect?.connection, undefined)
  // RFC 8441 §5: the client's key stays on the HTTP/1.1 leg; its accept is computed at the front.
  assert.equal(connect?.['sec-websocket-key'], undefined)
  assert.equal(connect?.['sec-websocket-version'], '13')
  const app = await seen
  assert.equal(app.method, 'GET')
  assert.equal(app.headers.upgrade, 'websocket')
  assert.equal(app.headers.host, `127.0.0.1:${front.port}`)
  assert.equal(app.headers['x-trace'], 'abc')

  const closed = once(ws, 'close')
  ws.close(1000, 'done')
  const [code] = await closed
  assert.equal(code, 1000)
})

test('crosses a chain with two HTTP/2 hops', async (t) => {
  const echoApp = await startEchoApp(t)
  const inner = await sidecarOf(t, echoApp)
  const middle = await startNode(t, { listen: 'h2c', upstream: inner.origin, upstreamProtocol: 'http2' })
  const innerWatch = watchHttp2(inner.app.server)
  const middleWatch = watchHttp2(middle.app.server)
  const front = await startNode(t, { listen: 'http1', upstream: middle.origin, upstreamProtocol: 'http2' })

  const ws = await openWs(t, `ws://127.0.0.1:${front.port}/ws/two-hops`)
  assert.equal(await echo(ws, 'through two hops'), 'through two hops')
  assert.equal(middleWatch.connects[0]?.[':protocol'], 'websocket')
  assert.equal(innerWatch.connects[0]?.[':protocol'], 'websocket')
  assert.equal(innerWatch.connects[0]?.[':method'], 'CONNECT')
})

test('sends Envoy\'s exact extended CONNECT and relays a 201 untouched without opening a tunnel', async (t) => {
  const received: http2.IncomingHttpHeaders[] = []
  const peer = http2.createServer({ settings: { enableConnectProtocol: true } })
  peer.on('stream', (stream, headers) => {
    received.push(headers)
    stream.respond({ ':status': 201, 'x-peer': 'yes', 'content-length': '4' })
    stream.end('made')
  })
  const peerPort = await listen(t, peer)
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${peerPort}`, upstreamProtocol: 'http2' })

  const socket = await connect(t, front.port)
  socket.write('GET /raw/x?y=1 HTTP/1.1\r\nHost: svc.local\r\nUpgrade: foo\r\nConnection: keep-alive, Upgrade\r\n' +
    'Keep-Alive: timeout=5\r\nContent-Length: 0\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  const { status, head, rest } = await readHead(socket)
  assert.equal(status, 201)
  assert.match(head, /\r\nx-peer: yes/i)
  // Node drops Content-Length from an answer to CONNECT: the body comes chunked on HTTP/1.1.
  assert.match(head, /\r\ntransfer-encoding: chunked/i)
  assert.equal(rest.toString() + await readAll(socket), '4\r\nmade\r\n0\r\n\r\n')

  const h = received[0]!
  assert.equal(h[':method'], 'CONNECT')
  assert.equal(h[':protocol'], 'foo')
  assert.equal(h[':scheme'], 'http')
  assert.equal(h[':authority'], 'svc.local')
  assert.equal(h[':path'], '/raw/x?y=1')
  for (const hop of ['upgrade', 'connection', 'keep-alive', 'host', 'content-length']) assert.equal(h[hop], undefined, hop)
  assert.equal(h['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==')
  assert.equal(h['sec-websocket-version'], '13')
})

test('sends the client\'s Upgrade value as :protocol in its own case, and answers with it', async (t) => {
  const received: http2.IncomingHttpHeaders[] = []
  const peer = http2.createServer({ settings: { enableConnectProtocol: true } })
  peer.on('stream', (stream, headers) => {
    received.push(headers)
    stream.respond({ ':status': 200 })
  })
  const peerPort = await listen(t, peer)
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${peerPort}`, upstreamProtocol: 'http2' })
  const socket = await connect(t, front.port)
  socket.write('GET /raw/x HTTP/1.1\r\nHost: svc.local\r\nUpgrade: Foo\r\nConnection: Upgrade\r\n\r\n')
  const { status, head } = await readHead(socket)
  assert.equal(status, 101)
  assert.match(head, /\r\n[Uu]pgrade: Foo\r\n/)
  assert.equal(received[0]![':protocol'], 'Foo')
  socket.destroy()
})

test('forwards a non-zero Content-Length on the extended CONNECT', async (t) => {
  const received: http2.IncomingHttpHeaders[] = []
  const peer = http2.createServer({ settings: { enableConnectProtocol: true } })
  peer.on('stream', (stream, headers) => {
    received.push(headers)
    stream.respond({ ':status': 404 })
    stream.end()
  })
  const peerPort = await listen(t, peer)
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${peerPort}`, upstreamProtocol: 'http2' })
  const socket = await connect(t, front.port)
  socket.write('GET /raw HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\nContent-Length: 3\r\n\r\nabc')
  const { status } = await readHead(socket)
  assert.equal(status, 404)
  assert.equal(received[0]?.['content-length'], '3')
})

test('answers 502 with a coded log line when the HTTP/2 peer does not advertise extended CONNECT', async (t) => {
  const streams: http2.IncomingHttpHeaders[] = []
  const peer = http2.createServer()
  peer.on('stream', (stream, headers) => {
    streams.push(headers)
    stream.respond({ ':status': 200 })
  })
  const peerPort = await listen(t, peer)
  const lines: Array<Record<string, unknown>> = []
  const logStream = new Writable({
    write (chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() }
  })
  const front = await startNode(t, {
    listen: 'http1',
    upstream: `127.0.0.1:${peerPort}`,
    upstreamProtocol: 'http2',
    fastify: { logger: { level: 'warn', stream: logStream } }
  })
  const socket = await connect(t, front.port)
  socket.write('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  const { status } = await readHead(socket)
  assert.equal(status, 502)
  assert.equal(streams.length, 0, 'no :protocol was sent to a peer without SETTINGS_ENABLE_CONNECT_PROTOCOL')
  assert.ok(lines.some(l => l.code === 'SWY_ERR_H2_CONNECT_PROTOCOL_DISABLED'), JSON.stringify(lines))
})

test('downgrades a POST upgrade to GET after the HTTP/2 hop by default', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const front = await frontOf(t, sidecar)
  const seen = echoApp.next()
  const socket = await connect(t, front.port)
  socket.write('POST /raw/post HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n')
  const { status } = await readHead(socket)
  assert.equal(status, 101)
  assert.equal((await seen).method, 'GET')
})

test('keeps a POST upgrade a POST across the hop with preserveMethod on both ends', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp, { plugin: { preserveMethod: true } })
  const watch = watchHttp2(sidecar.app.server)
  const front = await frontOf(t, sidecar, { plugin: { preserveMethod: true } })
  const seen = echoApp.next()
  const socket = await connect(t, front.port)
  socket.write('POST /raw/post HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\nearly')
  const { status, rest } = await readHead(socket)
  assert.equal(status, 101)
  const app = await seen
  assert.equal(app.method, 'POST')
  assert.equal(app.headers['x-switchyard-original-method'], undefined, 'the carrier never reaches the app')
  assert.equal(watch.connects[0]?.['x-switchyard-original-method'], 'POST')
  socket.resume()
  assert.match(rest.toString() + await readUntil(socket, 'early'), /early/)
})

test('downgrades to GET when only the front preserves the method', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const front = await frontOf(t, sidecar, { plugin: { preserveMethod: true } })
  const seen = echoApp.next()
  const socket = await connect(t, front.port)
  socket.write('POST /raw/post HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n')
  assert.equal((await readHead(socket)).status, 101)
  const app = await seen
  assert.equal(app.method, 'GET')
  assert.equal(app.headers['x-switchyard-original-method'], undefined)
})

test('strips a carrier header a client forges, on upgrades and plain requests', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp, { plugin: { preserveMethod: true } })
  const watch = watchHttp2(sidecar.app.server)
  const front = await frontOf(t, sidecar, { plugin: { preserveMethod: true } })
  const seen = echoApp.next()
  const socket = await connect(t, front.port)
  socket.write('GET /raw/forged HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\nX-Switchyard-Original-Method: DELETE\r\n\r\n')
  assert.equal((await readHead(socket)).status, 101)
  assert.equal((await seen).method, 'GET')
  assert.equal(watch.connects[0]?.['x-switchyard-original-method'], undefined)

  // Plain requests too: a front whose cluster is the app itself, over HTTP/1.1.
  const direct = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1', plugin: { preserveMethod: true } })
  const res = await fetch(`http://127.0.0.1:${direct.port}/plain`, { headers: { 'x-switchyard-original-method': 'DELETE' } })
  const body = await res.json() as { method: string, headers: Record<string, string> }
  assert.equal(body.method, 'GET')
  assert.equal(body.headers['x-switchyard-original-method'], undefined)
})

test('ignores the carrier on the HTTP/2 side without preserveMethod', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const seen = echoApp.next()
  const session = await h2Session(t, sidecar.origin)
  const { headers } = await extendedConnect(session, '/raw/x', 'foo', { 'x-switchyard-original-method': 'POST' })
  assert.equal(headers[':status'], 200)
  const app = await seen
  assert.equal(app.method, 'GET')
  assert.equal(app.headers['x-switchyard-original-method'], undefined)
})

test('refuses a plain CONNECT with 403 when no CONNECT upgrade config allows it', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await startNode(t, {
    listen: 'h2c',
    upstream: `127.0.0.1:${echoApp.port}`,
    upstreamProtocol: 'http1',
    routes: (app) => { app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'mesh' }, handler: proxy }) }
  })
  const session = await h2Session(t, sidecar.origin)
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'example.com:443' })
  stream.on('error', () => {})
  const [res] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  assert.equal(res[':status'], 403)
  assert.equal(echoApp.seen.length, 0)
  assert.equal(sidecar.app.switchyard.stats().downstream_rq_ws_on_non_ws_route, 1)
})

test('answers 404 to a plain CONNECT that matches no CONNECT route', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp, { core: { upgradeConfigs: [{ upgradeType: 'CONNECT' }] } })
  const session = await h2Session(t, sidecar.origin)
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'example.com:443' })
  stream.on('error', () => {})
  const [res] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  assert.equal(res[':status'], 404)
  assert.equal(echoApp.seen.length, 0)
  // The client lets go first: a server session whose client stays connected keeps app.close() waiting.
  session.destroy()
})

test('routes a plain CONNECT when a CONNECT upgrade config enables it, and forwards it to the endpoint', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await startNode(t, {
    listen: 'h2c',
    upstream: `127.0.0.1:${echoApp.port}`,
    upstreamProtocol: 'http1',
    core: { upgradeConfigs: [{ upgradeType: 'CONNECT' }] },
    routes: (app) => { app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'mesh' }, handler: proxy }) }
  })
  const seen = echoApp.next()
  const session = await h2Session(t, sidecar.origin)
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'example.com:443' })
  stream.on('error', () => {})
  const [res] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  // The app is no proxy: its 404 to the forwarded CONNECT is relayed, and nothing is tunnelled.
  assert.equal(res[':status'], 404)
  const app = await seen
  assert.equal(app.method, 'CONNECT')
  assert.equal(app.url, 'example.com:443')
  assert.equal(app.headers.host, 'example.com:443')
  assert.equal(app.headers.upgrade, undefined)
  session.destroy()
})

test('generates a Sec-WebSocket-Key for an RFC 8441 client, checks the accept and strips it', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const seen = echoApp.next()
  const session = await h2Session(t, sidecar.origin)
  const { stream, headers } = await extendedConnect(session, '/ws/rfc8441', 'websocket', { 'sec-websocket-version': '13' })
  assert.equal(headers[':status'], 200)
  assert.equal(headers['sec-websocket-accept'], undefined)
  assert.equal(headers.upgrade, undefined)
  const app = await seen
  assert.match(String(app.headers['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/)

  const frames = decodeFrames(stream)
  stream.write(maskedTextFrame('frame over RFC 8441'))
  assert.equal((await frames.next()).value, 'frame over RFC 8441')
})

test('answers 502 when the upstream\'s Sec-WebSocket-Accept does not match the generated key', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const session = await h2Session(t, sidecar.origin)
  const { headers } = await extendedConnect(session, '/bad-accept', 'websocket', { 'sec-websocket-version': '13' })
  assert.equal(headers[':status'], 502)
})

test('passes a client-supplied Sec-WebSocket-Key through unchecked', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const seen = echoApp.next()
  const session = await h2Session(t, sidecar.origin)
  const { headers } = await extendedConnect(session, '/bad-accept', 'websocket', { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' })
  assert.equal(headers[':status'], 200)
  assert.equal(headers['sec-websocket-accept'], 'd3Jvbmc=')
  assert.equal((await seen).headers['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==')
})

test('runs the route\'s hooks for an extended CONNECT: a hook\'s 401 reaches the HTTP/2 client', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await startNode(t, {
    listen: 'h2c',
    upstream: `127.0.0.1:${echoApp.port}`,
    upstreamProtocol: 'http1',
    routes: (app) => app.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization !== 'Bearer ok') return reply.code(401).send()
    })
  })
  const session = await h2Session(t, sidecar.origin)
  const refused = await extendedConnect(session, '/raw/a', 'foo')
  assert.equal(refused.headers[':status'], 401)
  const allowed = await extendedConnect(session, '/raw/a', 'foo', { authorization: 'Bearer ok' })
  assert.equal(allowed.headers[':status'], 200)
  assert.equal(echoApp.seen.length, 1)
})

test('answers 403 to an upgrade type the route does not enable, over HTTP/2', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const session = await h2Session(t, sidecar.origin)
  const { headers } = await extendedConnect(session, '/raw/a', 'bar')
  assert.equal(headers[':status'], 403)
  assert.equal(echoApp.seen.length, 0)
})

test('carries END_STREAM as a half-close and back', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const session = await h2Session(t, sidecar.origin)
  const { stream, headers } = await extendedConnect(session, '/raw/half', 'foo')
  assert.equal(headers[':status'], 200)
  stream.write('ping')
  stream.end()
  let got = ''
  for await (const chunk of stream) got += String(chunk)
  assert.equal(got, 'pingbye')
})

test('resets the app\'s connection when the HTTP/2 client resets the stream', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const seen = echoApp.next()
  const session = await h2Session(t, sidecar.origin)
  const { stream } = await extendedConnect(session, '/raw/reset', 'foo')
  const app = await seen
  const appClosed = new Promise<string | undefined>((resolve) => {
    app.socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code))
    app.socket.once('close', () => resolve(undefined))
  })
  stream.close(http2.constants.NGHTTP2_CANCEL)
  assert.equal(await appClosed, 'ECONNRESET')
  await waitForGauge(sidecar.app, 'downstream_cx_upgrades_active', 0)
})

test('resets the HTTP/2 stream when the app resets its connection', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await sidecarOf(t, echoApp)
  const seen = echoApp.next()
  const session = await h2Session(t, sidecar.origin)
  const { stream } = await extendedConnect(session, '/raw/reset', 'foo')
  const app = await seen
  const closed = once(stream, 'close')
  app.socket.resetAndDestroy()
  await closed
  assert.notEqual(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR)
  await waitForGauge(sidecar.app, 'downstream_cx_upgrades_active', 0)
})

test('advertises SETTINGS_ENABLE_CONNECT_PROTOCOL only while the plugin is registered', async (t) => {
  const echoApp = await startEchoApp(t)
  const without = await sidecarOf(t, echoApp, { withPlugin: false })
  const withPlugin = await sidecarOf(t, echoApp)
  assert.notEqual((await h2Session(t, without.origin)).remoteSettings.enableConnectProtocol, true)
  assert.equal((await h2Session(t, withPlugin.origin)).remoteSettings.enableConnectProtocol, true)
})

test('refuses unknown plugin options with a coded error', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(switchyard, {})
  await assert.rejects(async () => {
    await app.register(h2Connect, { preserveMethod: 'yes' } as never)
  }, { code: 'SWY_ERR_H2_OPTIONS' })
})
