import { test } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import net from 'node:net'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import h2Connect from '@switchyard/h2-connect'
import { rawExchange, scriptedUpstream, type ScriptedUpstream } from '../helpers/hostile.ts'

/**
 * h2c smuggling (Bishop Fox, 2020): a client asks a proxy for `Upgrade: h2c`; a proxy that forwards it lets
 * the backend switch to HTTP/2 on that connection, and the client then talks HTTP/2 straight to the backend,
 * past the proxy's routes and hooks. Envoy's HTTP/1 codec strips h2c and serves a plain request; RFC 9113
 * §3.1 removed the h2c upgrade. Here: the scripted app answers 101 to any upgrade it is offered, so an h2c
 * that got through would be visible.
 */
async function upstreamFor (t: TestContext): Promise<ScriptedUpstream> {
  const upstream = await scriptedUpstream()
  t.after(() => upstream.close())
  return upstream
}

async function front (t: TestContext, upstream: ScriptedUpstream, routeConfigs?: Array<{ upgradeType: string, enabled: boolean }>): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(switchyard, { clusters: { up: { endpoints: [`127.0.0.1:${upstream.port}`] } }, upgradeConfigs: [{ upgradeType: 'websocket' }] })
  app.get('/app', { upstream: { cluster: 'up' }, ...(routeConfigs !== undefined ? { upgradeConfigs: routeConfigs } : {}) }, proxy)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as net.AddressInfo).port }
}

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
const h2cHead = (extra = ''): string =>
  `GET /app HTTP/1.1\r\nhost: front\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n${extra}\r\n`

test('an h2c upgrade reaches the app as a plain GET, so the app never switches and the client gets no 101', async (t) => {
  const upstream = await upstreamFor(t)
  const { app, port } = await front(t, upstream)
  const r = await rawExchange(port, [h2cHead()])
  assert.equal(r.status, 200)
  assert.doesNotMatch(r.data, /101 Switching/)
  assert.equal(upstream.heads.length, 1)
  assert.doesNotMatch(upstream.heads[0]!, /\r\nupgrade:|http2-settings/i)
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_total ?? 0, 0)
})

test('the HTTP/2 preface a client sends after its h2c upgrade head never reaches the app', async (t) => {
  const upstream = await upstreamFor(t)
  const { port } = await front(t, upstream)
  const r = await rawExchange(port, [h2cHead() + PREFACE + 'GET /internal HTTP/1.1\r\nhost: x\r\n\r\n'])
  assert.equal(r.status, 200)
  assert.deepEqual(upstream.heads.map((h) => h.split(' ')[1]), ['/app'])
  assert.equal(upstream.after.get(0), undefined, 'no byte after the request head reached the app')
})

test('a route that enables h2c still never tunnels it', async (t) => {
  const upstream = await upstreamFor(t)
  const { port } = await front(t, upstream, [{ upgradeType: 'h2c', enabled: true }])
  const r = await rawExchange(port, [h2cHead() + PREFACE])
  assert.equal(r.status, 200)
  assert.doesNotMatch(upstream.heads[0]!, /h2c/i)
  assert.equal(upstream.after.get(0), undefined)
})

test('h2c hidden in an Upgrade list with mixed case is stripped whole', async (t) => {
  const upstream = await upstreamFor(t)
  const { port } = await front(t, upstream)
  const r = await rawExchange(port, ['GET /app HTTP/1.1\r\nhost: front\r\nconnection: UPGRADE\r\nupgrade: websocket, H2C\r\n\r\n' + PREFACE])
  assert.equal(r.status, 200)
  assert.doesNotMatch(upstream.heads[0]!, /\r\nupgrade:/i)
  assert.equal(upstream.after.get(0), undefined)
})

async function sidecar (t: TestContext, upstream: ScriptedUpstream, routeConfigs?: Array<{ upgradeType: string, enabled: boolean }>, pluginConfigs = [{ upgradeType: 'websocket' }]): Promise<string> {
  const app = Fastify({ http2: true, forceCloseConnections: true }) as unknown as FastifyInstance
  t.after(() => app.close())
  await app.register(switchyard, { clusters: { up: { endpoints: [`127.0.0.1:${upstream.port}`] } }, upgradeConfigs: pluginConfigs })
  await app.register(h2Connect)
  app.get('/app', { upstream: { cluster: 'up' }, ...(routeConfigs !== undefined ? { upgradeConfigs: routeConfigs } : {}) }, proxy)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`
}

async function connectH2c (t: TestContext, origin: string): Promise<{ status: number }> {
  const session = http2.connect(origin)
  session.on('error', () => {})
  t.after(() => session.destroy())
  await once(session, 'remoteSettings')
  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'h2c', ':path': '/app', ':scheme': 'http', ':authority': 'sidecar' }, { endStream: false })
  stream.on('error', () => {})
  stream.write(PREFACE)
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  stream.close()
  return { status: Number(headers[':status']) }
}

test('an extended CONNECT with :protocol h2c to a sidecar is refused with 403 and nothing reaches the app', async (t) => {
  const upstream = await upstreamFor(t)
  const origin = await sidecar(t, upstream)
  const { status } = await connectH2c(t, origin)
  assert.equal(status, 403)
  assert.equal(upstream.heads.length, 0)
})

test('an extended CONNECT with :protocol h2c is refused even where a route enables h2c', async (t) => {
  const upstream = await upstreamFor(t)
  const origin = await sidecar(t, upstream, [{ upgradeType: 'h2c', enabled: true }])
  const { status } = await connectH2c(t, origin)
  assert.equal(status, 403)
  assert.equal(upstream.heads.length, 0, 'the app was never offered an h2c upgrade')
})

test('an extended CONNECT with :protocol h2c is refused even where the plugin enables h2c', async (t) => {
  const upstream = await upstreamFor(t)
  const origin = await sidecar(t, upstream, undefined, [{ upgradeType: 'h2c' }])
  const { status } = await connectH2c(t, origin)
  assert.equal(status, 403)
  assert.equal(upstream.heads.length, 0, 'the app was never offered an h2c upgrade')
})
