import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import WebSocket from 'ws'
import Fastify from 'fastify'
import type net from 'node:net'
import switchyard, { proxy } from '@switchyard/core'
import { cluster } from '../helpers/start-proxy.ts'
import { wsEchoUpstream, rawUpstream, accept, finished, type UpstreamConnection } from '../helpers/echo-upstream.ts'
import { rawClient, upgradeHead, parseHead } from '../helpers/raw-client.ts'

async function listening (t: Parameters<typeof rawUpstream>[0], clusters: Record<string, { endpoints: string[] }>) {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(switchyard, { clusters, upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo' }] })
  for (const name of Object.keys(clusters)) app.get(`/${name}`, { upstream: { cluster: name } }, proxy)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as net.AddressInfo).port }
}

test('app.close() closes every open tunnel, both sides, and returns', async (t) => {
  const wsUp = await wsEchoUpstream(t)
  const conns: UpstreamConnection[] = []
  const fooUp = await rawUpstream(t, (conn) => { conns.push(conn); accept(conn) })
  const { app, port } = await listening(t, { ws: cluster(wsUp.port), foo: cluster(fooUp.port) })
  const sockets: WebSocket[] = []
  for (let i = 0; i < 3; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
    t.after(() => ws.terminate())
    await once(ws, 'open')
    sockets.push(ws)
  }
  const raws = []
  for (let i = 0; i < 3; i++) {
    const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
    assert.equal((await client.head()).status, 101)
    raws.push(client)
  }
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active, 6)
  const wsClosed = sockets.map((ws) => once(ws, 'close'))
  await app.close()
  await Promise.all(wsClosed)
  await Promise.all(raws.map((c) => c.done))
  await Promise.all(conns.map((c) => finished(c.socket)))
  await Promise.all(wsUp.sockets.map((s) => s.readyState === WebSocket.CLOSED ? undefined : once(s, 'close')))
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active, 0)
  assert.equal(app.server.listening, false)
})

test('app.close() returns while an upgrade handshake is still waiting for the upstream', async (t) => {
  const silent = await rawUpstream(t, () => {})
  const { app, port } = await listening(t, { foo: cluster(silent.port) })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  await new Promise<void>((resolve) => {
    if (silent.connections > 0 && silent.heads.length > 0) resolve()
    else silent.server.once('connection', (s: net.Socket) => s.once('data', () => resolve()))
  })
  await app.close()
  await client.done
  const head = parseHead(client.received)
  assert.ok(head === null || head.status >= 500, `unexpected answer ${head?.status}`)
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active ?? 0, 0)
})

test('app.close() returns when a tunnel client has stopped reading under a flood', async (t) => {
  let upstreamConn: UpstreamConnection | undefined
  const flooding = await rawUpstream(t, (conn) => {
    upstreamConn = conn
    accept(conn)
    const chunk = Buffer.alloc(64 * 1024, 1)
    const pump = (): void => { while (!conn.socket.destroyed && conn.socket.write(chunk)); }
    conn.socket.on('drain', pump)
    pump()
  })
  const { app, port } = await listening(t, { foo: cluster(flooding.port) })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  await client.head()
  client.socket.pause()
  await app.close()
  await finished(upstreamConn!.socket)
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active ?? 0, 0)
})
