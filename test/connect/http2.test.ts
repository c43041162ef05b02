import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http from 'node:http'
import http2 from 'node:http2'
import type net from 'node:net'
import tls from 'node:tls'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import h2Connect from '@switchyard/h2-connect'
import { startProxy, cluster, stat, nextTunnelClose } from '../helpers/start-proxy.ts'
import { listen } from '../helpers/net.ts'
import { watchHttp2 } from '../helpers/h2-mesh.ts'
import { startHaproxy, startNghttpx } from '../helpers/h2-peers.ts'
import { havePeers } from '../helpers/peers.ts'
import { selfSigned } from '../helpers/h2-tls.ts'
import { tcpEcho, connectVia, readBytes, curl, connectSidecar } from '../helpers/connect.ts'

/** A front (HTTP/1.1 in) that forwards every CONNECT to `sidecarPort` as an HTTP/2 CONNECT. */
async function connectFront (t: Parameters<typeof startProxy>[0], sidecarPort: number) {
  return await startProxy(t, {
    clusters: { sidecar: { endpoints: [`http://127.0.0.1:${sidecarPort}`], protocol: 'http2' } },
    upgradeConfigs: [{ upgradeType: 'CONNECT' }]
  }, async (app) => {
    await app.register(h2Connect)
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'sidecar' }, handler: proxy })
  })
}

test('an HTTP/2 CONNECT without :protocol is terminated by the sidecar: 200, then DATA frames carry the bytes both ways', async (t) => {
  const echo = await tcpEcho(t)
  const sidecar = await connectSidecar(t, echo.port)
  const session = http2.connect(`http://127.0.0.1:${sidecar.port}`)
  t.after(() => session.destroy())
  const closed = nextTunnelClose()
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'db.internal:5432' })
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  assert.equal(headers[':status'], 200)
  assert.equal(headers['content-length'], undefined)
  stream.write('over http/2')
  const [echoed] = await once(stream, 'data') as [Buffer]
  assert.equal(echoed.toString(), 'over http/2')
  // END_STREAM is the half-close: the echo answers with its FIN, the stream ends.
  stream.end()
  stream.resume()
  await once(stream, 'end')
  const message = await closed
  assert.equal(message.upgradeType, 'connect')
  assert.equal(echo.received[0]!.toString(), 'over http/2')
  assert.equal(stat(sidecar.app, 'upgrade.connect.downstream_cx_upgrades_total'), 1)
})

test('an HTTP/2 CONNECT the sidecar does not enable gets 403 and its DATA reaches nothing', async (t) => {
  const echo = await tcpEcho(t)
  const sidecar = await connectSidecar(t, echo.port, { upgradeConfigs: [] })
  const session = http2.connect(`http://127.0.0.1:${sidecar.port}`)
  t.after(() => session.destroy())
  const ask = async (): Promise<number> => {
    const stream = session.request({ ':method': 'CONNECT', ':authority': 'db.internal:5432' })
    stream.write('never tunnelled')
    const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
    stream.resume()
    await once(stream, 'close')
    return Number(headers[':status'])
  }
  assert.equal(await ask(), 403)
  assert.equal(echo.connections, 0)
  assert.equal(stat(sidecar.app, 'downstream_rq_ws_on_non_ws_route'), 1)
})

test('an HTTP/2 CONNECT to a server without h2-connect gets 403, counted as a refused upgrade type', async (t) => {
  const echo = await tcpEcho(t)
  const app = Fastify({ http2: true, forceCloseConnections: true }) as unknown as FastifyInstance
  t.after(() => app.close())
  await app.register(switchyard, { clusters: { egress: cluster(echo.port) }, upgradeConfigs: [{ upgradeType: 'CONNECT' }] })
  app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const session = http2.connect(`http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`)
  t.after(() => session.destroy())
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'db.internal:5432' })
  stream.on('error', () => {})
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  stream.resume()
  assert.equal(headers[':status'], 403)
  assert.equal(echo.connections, 0)
  assert.equal(stat(app, 'downstream_rq_ws_on_non_ws_route'), 1)
})

test('H1 CONNECT → H2 → TCP: curl reaches an HTTP server through a front and a sidecar', async (t) => {
  if (!havePeers(t, 'curl')) return
  const origin = http.createServer((req, res) => res.end(`origin saw ${req.url} host=${req.headers.host}`))
  const originPort = await listen(t, origin)
  const sidecar = await connectSidecar(t, originPort)
  const watch = watchHttp2(sidecar.app.server)
  const front = await connectFront(t, sidecar.port)
  const out = await curl(['-p', '-x', `http://127.0.0.1:${front.port}`, 'http://unresolvable.test:8080/across?the=mesh'])
  assert.equal(out.code, 0, out.stderr)
  assert.equal(out.stdout, 'origin saw /across?the=mesh host=unresolvable.test:8080')
  // RFC 9113 §8.5: the hop carries :method and :authority only.
  const sent = watch.connects[0]!
  assert.equal(sent[':authority'], 'unresolvable.test:8080')
  assert.equal(sent[':protocol'], undefined)
  assert.equal(sent[':path'], undefined)
  assert.equal(sent[':scheme'], undefined)
  assert.equal(stat(front.app, 'upgrade.connect.downstream_cx_upgrades_total'), 1)
  assert.equal(stat(sidecar.app, 'upgrade.connect.downstream_cx_upgrades_total'), 1)
})

test('the front relays the sidecar\'s refusal of a CONNECT and tunnels nothing', async (t) => {
  const echo = await tcpEcho(t)
  const sidecar = await connectSidecar(t, echo.port, { upgradeConfigs: [{ upgradeType: 'CONNECT', enabled: false }] })
  const front = await connectFront(t, sidecar.port)
  const { res } = await connectVia(t, front.port, 'db.internal:5432')
  assert.equal(res.statusCode, 403)
  assert.equal(echo.connections, 0)
  assert.equal(stat(front.app, 'downstream_cx_upgrades_active'), 0)
})

test('HAProxy (HTTP/1.1 in, HTTP/2 out) sends a CONNECT on as an HTTP/2 CONNECT the sidecar terminates', async (t) => {
  if (!havePeers(t, 'haproxy')) return
  const echo = await tcpEcho(t)
  const sidecar = await connectSidecar(t, echo.port)
  const watch = watchHttp2(sidecar.app.server)
  const peerPort = await startHaproxy(t, { shape: 'h1-in-h2-out', backendPort: sidecar.port })
  // HAProxy requires the Host of a CONNECT to be its target (RFC 9112 §3.2).
  const { res, socket, head } = await connectVia(t, peerPort, 'db.internal:5432', { host: 'db.internal:5432' })
  assert.equal(res.statusCode, 200)
  socket.write('through haproxy')
  assert.equal((await readBytes(socket, 15, head)).toString(), 'through haproxy')
  assert.equal(watch.connects[0]?.[':authority'], 'db.internal:5432')
  assert.equal(watch.connects[0]?.[':protocol'], undefined)
})

test('nghttpx (forward proxy, HTTP/2 out) sends a CONNECT on as an HTTP/2 CONNECT the sidecar terminates', async (t) => {
  if (!havePeers(t, 'nghttpx')) return
  const echo = await tcpEcho(t)
  const sidecar = await connectSidecar(t, echo.port)
  const watch = watchHttp2(sidecar.app.server)
  const peerPort = await startNghttpx(t, { shape: 'h1-in-h2-out', backendPort: sidecar.port, forwardProxy: true })
  const { res, socket, head } = await connectVia(t, peerPort, 'db.internal:5432', { host: 'db.internal:5432' })
  assert.equal(res.statusCode, 200)
  socket.write('through nghttpx')
  assert.equal((await readBytes(socket, 15, head)).toString(), 'through nghttpx')
  assert.equal(watch.connects[0]?.[':authority'], 'db.internal:5432')
})

test('a front sends an HTTP/2 CONNECT to nghttpx, which passes it to a proxy that terminates it', async (t) => {
  if (!havePeers(t, 'nghttpx')) return
  const echo = await tcpEcho(t)
  // The last hop: an HTTP/1.1 Switchyard that terminates CONNECT.
  const terminator = await startProxy(t, { clusters: { target: cluster(echo.port) }, upgradeConfigs: [{ upgradeType: 'CONNECT' }] }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'target' }, connectConfig: {}, handler: proxy })
  })
  const peerPort = await startNghttpx(t, { shape: 'h2-in-h1-out', backendPort: terminator.port, forwardProxy: true })
  const front = await connectFront(t, peerPort)
  const { res, socket, head } = await connectVia(t, front.port, 'db.internal:5432')
  assert.equal(res.statusCode, 200)
  socket.write('to nghttpx over h2')
  assert.equal((await readBytes(socket, 18, head)).toString(), 'to nghttpx over h2')
  assert.equal(stat(terminator.app, 'upgrade.connect.downstream_cx_upgrades_total'), 1)
})

test('bytes a client sends on an HTTP/2 CONNECT before the 200 are held and reach the endpoint after it', async (t) => {
  const echo = await tcpEcho(t)
  const sidecar = await connectSidecar(t, echo.port)
  const session = http2.connect(`http://127.0.0.1:${sidecar.port}`)
  t.after(() => session.destroy())
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'db.internal:5432' })
  stream.write('early')
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  assert.equal(headers[':status'], 200)
  let got = ''
  while (got.length < 5) got += String((await once(stream, 'data'))[0])
  assert.equal(got, 'early')
  stream.close()
})

test('an HTTP/1.1 CONNECT on a TLS HTTP/2 server that allows HTTP/1.1 is routed by core beside h2-connect', async (t) => {
  if (!havePeers(t, 'openssl')) return
  const echo = await tcpEcho(t)
  const cert = selfSigned()
  t.after(() => cert.cleanup())
  const app = Fastify({ http2: true, https: { key: cert.key, cert: cert.cert, allowHTTP1: true }, forceCloseConnections: true } as never) as unknown as FastifyInstance
  t.after(() => app.close())
  await app.register(switchyard, { clusters: { target: cluster(echo.port) }, upgradeConfigs: [{ upgradeType: 'CONNECT' }] })
  await app.register(h2Connect)
  app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'target' }, connectConfig: {}, handler: proxy })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const socket = tls.connect({ port: (app.server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  socket.on('error', () => {})
  t.after(() => socket.destroy())
  await once(socket, 'secureConnect')
  socket.write('CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\nhello tls')
  let got = ''
  while (!got.endsWith('hello tls')) got += String((await once(socket, 'data'))[0])
  assert.match(got, /^HTTP\/1\.1 200 Connection Established\r\n/)
})
