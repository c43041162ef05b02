import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import Fastify from 'fastify'
import WebSocket, { WebSocketServer } from 'ws'
import switchyard, { proxy } from '../src/index.ts'

test('a WebSocket message goes through the proxy and back', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(wss, 'listening')
  wss.on('connection', (ws) => ws.on('message', (m, isBinary) => ws.send(m, { binary: isBinary })))
  t.after(() => wss.close())
  const app = Fastify()
  await app.register(switchyard, {
    clusters: { echo: { endpoints: [`127.0.0.1:${(wss.address() as { port: number }).port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }]
  })
  app.get('/echo', { upstream: { cluster: 'echo' } }, proxy)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const ws = new WebSocket(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/echo`)
  await once(ws, 'open')
  ws.send('hello')
  const [msg] = await once(ws, 'message')
  assert.equal(String(msg), 'hello')
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active, 1)
  ws.close()
  await once(ws, 'close')
})
