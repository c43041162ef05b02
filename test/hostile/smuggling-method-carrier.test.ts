import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { extendedConnect, h2Session, startEchoApp, startNode, type EchoApp, type MeshNode } from '../helpers/h2-mesh.ts'
import { rawExchange } from '../helpers/hostile.ts'
import { proxy } from '@switchyard/core'

/**
 * A forged method carrier: `x-switchyard-original-method` is how a front with `preserveMethod` tells a
 * sidecar the method of an upgrade before Envoy's downgrade to GET. A client that sends it itself must not
 * choose the method the app sees (a GET upgrade arriving as DELETE). The h2-connect README's rules: the
 * carrier is removed from every request a client sends (an `onRequest` hook on all routes), the sidecar
 * never forwards it, honours it only with `preserveMethod`, only on an extended CONNECT, only when it is a
 * method token; without `preserveMethod` the sidecar ignores it.
 */
const CARRIER = 'x-switchyard-original-method'

interface Mesh { app: EchoApp, sidecar: MeshNode, front: MeshNode }

async function mesh (t: TestContext, frontPreserve: boolean, sidecarPreserve: boolean): Promise<Mesh> {
  const app = await startEchoApp(t)
  const sidecar = await startNode(t, { upstream: `127.0.0.1:${app.port}`, upstreamProtocol: 'http1', listen: 'h2c', plugin: { preserveMethod: sidecarPreserve } })
  const front = await startNode(t, { upstream: sidecar.origin, upstreamProtocol: 'http2', listen: 'http1', plugin: { preserveMethod: frontPreserve } })
  return { app, sidecar, front }
}

const upgrade = (method: string, carrier: string): string =>
  `${method} /raw HTTP/1.1\r\nhost: front\r\nconnection: upgrade\r\nupgrade: foo\r\n${CARRIER}: ${carrier}\r\n\r\n`

for (const [frontPreserve, sidecarPreserve] of [[true, true], [false, true], [false, false]] as const) {
  test(`a client's carrier on a GET upgrade does not change the method (front preserveMethod ${frontPreserve}, sidecar ${sidecarPreserve})`, async (t) => {
    const m = await mesh(t, frontPreserve, sidecarPreserve)
    const seen = m.app.next()
    const r = await rawExchange(m.front.port, [upgrade('GET', 'DELETE'), 'AWAIT_HEAD', 'END'])
    assert.equal(r.status, 101)
    const req = await seen
    assert.equal(req.method, 'GET')
    assert.equal(req.headers[CARRIER], undefined, 'the carrier never reaches the app')
  })
}

test('a POST upgrade with a forged carrier arrives as the POST it is when both ends preserve the method', async (t) => {
  const m = await mesh(t, true, true)
  const seen = m.app.next()
  const r = await rawExchange(m.front.port, [upgrade('POST', 'DELETE'), 'AWAIT_HEAD', 'END'])
  assert.equal(r.status, 101)
  const req = await seen
  assert.equal(req.method, 'POST', 'the front sets the carrier from the real method, not the client\'s')
  assert.equal(req.headers[CARRIER], undefined)
})

test('the carrier in odd case and repeated is stripped from a client\'s upgrade', async (t) => {
  const m = await mesh(t, true, true)
  const seen = m.app.next()
  const head = 'GET /raw HTTP/1.1\r\nhost: front\r\nconnection: upgrade\r\nupgrade: foo\r\nX-Switchyard-Original-Method: PUT\r\nx-SWITCHYARD-original-method: PATCH\r\n\r\n'
  const r = await rawExchange(m.front.port, [head, 'AWAIT_HEAD', 'END'])
  assert.equal(r.status, 101)
  const req = await seen
  assert.equal(req.method, 'GET')
  assert.equal(req.headers[CARRIER], undefined)
})

test('the carrier is stripped from a plain request the front proxies', async (t) => {
  const m = await mesh(t, true, true)
  const r = await rawExchange(m.front.port, [`GET /plain HTTP/1.1\r\nhost: front\r\n${CARRIER}: DELETE\r\nconnection: close\r\n\r\n`])
  assert.equal(r.status, 200)
  const body = JSON.parse(r.data.slice(r.data.indexOf('\r\n\r\n') + 4)) as { method: string, headers: Record<string, string> }
  assert.equal(body.method, 'GET')
  assert.equal(body.headers[CARRIER], undefined)
})

test('straight to a sidecar without preserveMethod, an extended CONNECT\'s carrier is ignored and never forwarded', async (t) => {
  const m = await mesh(t, false, false)
  const session = await h2Session(t, m.sidecar.origin)
  const seen = m.app.next()
  const { headers, stream } = await extendedConnect(session, '/raw', 'foo', { [CARRIER]: 'DELETE' })
  assert.equal(headers[':status'], 200)
  const req = await seen
  assert.equal(req.method, 'GET')
  assert.equal(req.headers[CARRIER], undefined)
  stream.close()
})

test('straight to a sidecar with preserveMethod, a carrier that is not a method token is ignored', async (t) => {
  const m = await mesh(t, false, true)
  const session = await h2Session(t, m.sidecar.origin)
  const seen = m.app.next()
  const { headers, stream } = await extendedConnect(session, '/raw', 'foo', { [CARRIER]: 'GET /internal HTTP/1.1' })
  assert.equal(headers[':status'], 200)
  const req = await seen
  assert.equal(req.method, 'GET')
  assert.equal(req.url, '/raw')
  assert.equal(req.headers[CARRIER], undefined)
  stream.close()
})

test('straight to a sidecar with preserveMethod, an extended CONNECT\'s method token is honoured as documented and not forwarded', async (t) => {
  // The sidecar cannot tell a front from another HTTP/2 client: preserveMethod trusts its HTTP/2 peers (README).
  const m = await mesh(t, false, true)
  const session = await h2Session(t, m.sidecar.origin)
  const seen = m.app.next()
  const { headers, stream } = await extendedConnect(session, '/raw', 'foo', { [CARRIER]: 'post' })
  assert.equal(headers[':status'], 200)
  const req = await seen
  assert.equal(req.method, 'POST')
  assert.equal(req.headers[CARRIER], undefined)
  stream.close()
})

test('straight to a sidecar, a plain HTTP/2 request\'s carrier is stripped and its method kept', async (t) => {
  const m = await mesh(t, false, true)
  const session = await h2Session(t, m.sidecar.origin)
  const stream = session.request({ ':method': 'GET', ':path': '/plain', [CARRIER]: 'DELETE' })
  stream.setEncoding('utf8')
  let body = ''
  stream.on('data', (d: string) => { body += d })
  const [headers] = await Promise.all([new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve)), new Promise((resolve) => stream.once('end', resolve))])
  assert.equal(headers[':status'], 200)
  const seen = JSON.parse(body) as { method: string, headers: Record<string, string> }
  assert.equal(seen.method, 'GET')
  assert.equal(seen.headers[CARRIER], undefined)
})

test('straight to a sidecar, a plain CONNECT carrying the carrier is refused with 403', async (t) => {
  const app = await startEchoApp(t)
  // A CONNECT route, with CONNECT not enabled: the refusal is the upgrade-config truth table's, whatever the carrier says.
  const sidecar = await startNode(t, {
    upstream: `127.0.0.1:${app.port}`,
    upstreamProtocol: 'http1',
    listen: 'h2c',
    plugin: { preserveMethod: true },
    routes: (a) => { a.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'mesh' }, handler: proxy }) }
  })
  const m = { app, sidecar }
  const session = await h2Session(t, m.sidecar.origin)
  const stream = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:1', [CARRIER]: 'POST' }, { endStream: false })
  stream.on('error', () => {})
  const [headers] = await new Promise<[http2.IncomingHttpHeaders]>((resolve) => stream.once('response', (h) => resolve([h])))
  assert.equal(headers[':status'], 403)
  assert.equal(m.app.seen.length, 0)
})
