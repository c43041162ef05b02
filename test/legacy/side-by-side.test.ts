import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import WebSocket from 'ws'
import fastifyWebsocket from '@fastify/websocket'
import { proxy } from '@switchyard/core'
import { legacyCloses, startLegacyProxy } from '../helpers/legacy-net.ts'
import { wsEchoUpstream } from '../helpers/legacy-upstreams.ts'

async function open (url: string): Promise<WebSocket> {
  const ws = new WebSocket(url)
  await once(ws, 'open')
  return ws
}

async function roundTrip (ws: WebSocket, message: string): Promise<string> {
  ws.send(message)
  const [data] = await once(ws, 'message') as [Buffer]
  return String(data)
}

test('serves legacy and new-style WebSocket routes side by side, with Envoy\'s legacy and upgrade stats', async (t) => {
  const legacyUp = await wsEchoUpstream(t, 'legacy')
  const modernUp = await wsEchoUpstream(t, 'modern')
  const { port, app } = await startLegacyProxy(t, {
    clusters: {
      legacy: { endpoints: [`127.0.0.1:${legacyUp.port}`] },
      modern: { endpoints: [`127.0.0.1:${modernUp.port}`] }
    },
    upgradeConfigs: [{ upgradeType: 'websocket' }]
  }, async (app) => {
    await app.register(fastifyWebsocket)
    app.get('/legacy', { useWebsocket: true, upstream: { cluster: 'legacy' } }, proxy)
    app.get('/modern', { upstream: { cluster: 'modern' } }, proxy)
    app.get('/local', { websocket: true }, (socket) => {
      socket.on('message', (m: Buffer) => socket.send(`local:${String(m)}`))
    })
  })
  const closes = legacyCloses(t)
  const legacy = [await open(`ws://127.0.0.1:${port}/legacy`), await open(`ws://127.0.0.1:${port}/legacy`)]
  const modern = await open(`ws://127.0.0.1:${port}/modern`)
  const local = await open(`ws://127.0.0.1:${port}/local`)
  t.after(() => { for (const ws of [...legacy, modern, local]) ws.terminate() })

  assert.equal(await roundTrip(legacy[0]!, 'a'), 'echo:a')
  assert.equal(await roundTrip(legacy[1]!, 'b'), 'echo:b')
  assert.equal(await roundTrip(modern, 'c'), 'echo:c')
  assert.equal(await roundTrip(local, 'd'), 'local:d')
  assert.equal(legacyUp.requests.length, 2)
  assert.equal(modernUp.requests.length, 1)

  let stats = app.switchyard.stats()
  assert.equal(stats.downstream_cx_websocket_total, 2)
  assert.equal(stats.downstream_cx_websocket_active, 2)
  assert.equal(stats.downstream_cx_upgrades_total, 1)
  assert.equal(stats.downstream_cx_upgrades_active, 1)
  assert.equal(stats['cluster.legacy.upstream_cx_active'], 2)

  legacy[0]!.close()
  await once(legacy[0]!, 'close')
  await closes.waitFor(1)
  stats = app.switchyard.stats()
  assert.equal(stats.downstream_cx_websocket_active, 1)
  assert.equal(stats.downstream_cx_upgrades_active, 1)

  // A plain request on each proxied route still reaches its upstream.
  const plain = await fetch(`http://127.0.0.1:${port}/legacy`)
  assert.equal(await plain.text(), 'plain /legacy')
  assert.equal(plain.headers.get('x-upstream'), 'legacy')
})
