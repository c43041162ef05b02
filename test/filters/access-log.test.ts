import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once, EventEmitter } from 'node:events'
import { proxy, type Filter } from '@switchyard/core'
import { createAccessLogFilter, createWebSocketFrameLimitFilter, type AccessLogLine } from '@switchyard/filters'
import { echoUpstream, openWs, startFiltersProxy } from '../helpers/filters-upstreams.ts'

/** A pino destination for Fastify's logger that emits each access line. */
function accessLines () {
  const events = new EventEmitter()
  const lines: Array<AccessLogLine & { msg: string }> = []
  const stream = {
    write (line: string) {
      const obj = JSON.parse(line) as AccessLogLine & { msg: string }
      if (obj.msg !== 'access') return
      lines.push(obj)
      events.emit('line', obj)
    }
  }
  return { stream, lines, next: async () => (await once(events, 'line'))[0] as AccessLogLine }
}

test('writes one pino line per stream: a plain request and a WebSocket tunnel closed by the client', async (t) => {
  const log = accessLines()
  const up = await echoUpstream(t)
  const { port } = await startFiltersProxy(t, {
    clusters: { echo: { endpoints: [`127.0.0.1:${up.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    filters: [createAccessLogFilter(), createWebSocketFrameLimitFilter({ maxMessageBytes: 1 << 20 })]
  }, (app) => { app.get('/x', { upstream: { cluster: 'echo' } }, proxy) }, { logger: { level: 'info', stream: log.stream } })

  const plainLine = log.next()
  const res = await fetch(`http://127.0.0.1:${port}/x?q=1`)
  const body = await res.text()
  const plain = await plainLine
  assert.deepEqual({ ...plain, durationMs: 0 }, {
    ...plain,
    durationMs: 0,
    method: 'GET',
    path: '/x?q=1',
    upgradeType: null,
    status: 200,
    bytesFromDownstream: 0,
    bytesFromUpstream: Buffer.byteLength(body),
    closedBy: 'upstream',
    reason: 'complete'
  })

  const tunnelLine = log.next()
  const { ws } = await openWs(`ws://127.0.0.1:${port}/x`)
  ws.send('hello')
  await once(ws, 'message')
  ws.send('again')
  await once(ws, 'message')
  ws.terminate() // a FIN from the client, without a closing handshake
  const tunnel = await tunnelLine
  assert.equal(tunnel.upgradeType, 'websocket')
  assert.equal(tunnel.status, 101)
  assert.equal(tunnel.closedBy, 'downstream')
  assert.equal(tunnel.reason, 'end')
  // Two masked 5-byte text frames from the client (2 + 4 + 5 each), two unmasked echoes (2 + 5 each).
  assert.equal(tunnel.bytesFromDownstream, 22)
  assert.equal(tunnel.bytesFromUpstream, 14)
  assert.deepEqual(tunnel.websocketMessages, { fromDownstream: 2, fromUpstream: 2 })
  assert.ok(tunnel.durationMs > 0)
  assert.equal(log.lines.length, 2, 'one line per stream')
})

test('logs a local reply with a body as the proxy\'s, not as the upstream closing', async (t) => {
  const log = accessLines()
  const up = await echoUpstream(t)
  const refuse: Filter = { name: 'refuse', onRequestHeaders (ctx) { ctx.sendLocalReply(413, 'Payload Too Large') } }
  const { port } = await startFiltersProxy(t, {
    clusters: { echo: { endpoints: [`127.0.0.1:${up.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    filters: [createAccessLogFilter(), refuse]
  }, (app) => { app.get('/x', { upstream: { cluster: 'echo' } }, proxy) }, { logger: { level: 'info', stream: log.stream } })
  const line = log.next()
  const res = await fetch(`http://127.0.0.1:${port}/x`)
  assert.equal(res.status, 413)
  assert.equal(await res.text(), 'Payload Too Large')
  const logged = await line
  assert.equal(logged.status, 413)
  assert.equal(logged.closedBy, 'proxy')
  assert.equal(logged.reason, 'local_reply')
})
