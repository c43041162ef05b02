import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { WebSocket } from 'ws'
import { echo, openWs, startEchoApp, startNode, waitForGauge, watchHttp2 } from '../helpers/h2-mesh.ts'

test('multiplexes 1,000 concurrent tunnels over one HTTP/2 connection and delivers every message', async (t) => {
  const echoApp = await startEchoApp(t)
  // The listener's stream limit (100 by default) raised for the test, Node's session memory with it.
  const sidecar = await startNode(t, {
    listen: 'h2c',
    upstream: `127.0.0.1:${echoApp.port}`,
    upstreamProtocol: 'http1',
    plugin: { maxConcurrentStreams: 1000 },
    fastify: { http: { maxSessionMemory: 99 } } as never
  })
  const watch = watchHttp2(sidecar.app.server)
  const front = await startNode(t, { listen: 'http1', upstream: sidecar.origin, upstreamProtocol: 'http2' })

  const count = 1000
  const clients = await Promise.all(Array.from({ length: count }, async (_, i) => openWs(t, `ws://127.0.0.1:${front.port}/ws/${i}`)))
  const stats = (sidecar.app as unknown as { switchyard: { stats (): Record<string, number> } }).switchyard.stats()
  assert.equal(stats.downstream_cx_upgrades_active, count, 'all tunnels open at once')
  assert.equal(watch.sessions.length, 1)
  assert.equal(watch.connects.length, count)

  const rounds = 3
  const replies = await Promise.all(clients.map(async (ws, i) => {
    const got: string[] = []
    for (let r = 0; r < rounds; r++) got.push(await echo(ws, `client ${i} message ${r}`))
    return got
  }))
  for (const [i, got] of replies.entries()) {
    assert.deepEqual(got, Array.from({ length: rounds }, (_, r) => `client ${i} message ${r}`))
  }
  assert.equal(watch.sessions.length, 1, 'still one HTTP/2 connection')

  await Promise.all(clients.map(async (ws) => {
    const closed = once(ws, 'close')
    ws.close(1000)
    await closed
  }))
  await waitForGauge(front.app, 'downstream_cx_upgrades_active', 0)
  await waitForGauge(sidecar.app, 'downstream_cx_upgrades_active', 0)
})

test('opens another HTTP/2 connection only when the peer\'s stream limit is reached', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await startNode(t, {
    listen: 'h2c',
    upstream: `127.0.0.1:${echoApp.port}`,
    upstreamProtocol: 'http1',
    plugin: { maxConcurrentStreams: 2 }
  })
  const watch = watchHttp2(sidecar.app.server)
  const front = await startNode(t, { listen: 'http1', upstream: sidecar.origin, upstreamProtocol: 'http2' })

  const first = await Promise.all([0, 1].map(async (i) => openWs(t, `ws://127.0.0.1:${front.port}/ws/${i}`)))
  assert.equal(watch.sessions.length, 1)
  const third = await openWs(t, `ws://127.0.0.1:${front.port}/ws/2`)
  assert.equal(watch.sessions.length, 2)
  for (const ws of [...first, third]) assert.equal(await echo(ws, 'limit'), 'limit')

  // A closed stream frees its slot: the next tunnel reuses a pooled connection.
  const closed = once(first[0]!, 'close')
  first[0]!.close(1000)
  await closed
  await waitForGauge(front.app, 'downstream_cx_upgrades_active', 2)
  const fourth = await openWs(t, `ws://127.0.0.1:${front.port}/ws/3`)
  assert.equal(await echo(fourth, 'reused'), 'reused')
  assert.equal(watch.sessions.length, 2)
})

test('sends new tunnels to a fresh connection after a GOAWAY while open ones finish', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1' })
  const watch = watchHttp2(sidecar.app.server)
  const front = await startNode(t, { listen: 'http1', upstream: sidecar.origin, upstreamProtocol: 'http2' })

  const before = await openWs(t, `ws://127.0.0.1:${front.port}/ws/before`)
  assert.equal(await echo(before, 'one'), 'one')
  const [session] = watch.sessions
  // RFC 9113 §6.8: a graceful GOAWAY; streams up to the last id keep going.
  session!.goaway(0, session!.state.lastProcStreamID)
  const after = await openWs(t, `ws://127.0.0.1:${front.port}/ws/after`)
  assert.equal(watch.sessions.length, 2, 'the tunnel opened after the GOAWAY went to a new connection')
  assert.equal(await echo(after, 'two'), 'two')
  assert.equal(await echo(before, 'still open'), 'still open')
})

test('resets open tunnels when their HTTP/2 connection is lost and opens new ones on a fresh connection', async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1' })
  const watch = watchHttp2(sidecar.app.server)
  const front = await startNode(t, { listen: 'http1', upstream: sidecar.origin, upstreamProtocol: 'http2' })

  const doomed = await openWs(t, `ws://127.0.0.1:${front.port}/ws/doomed`)
  assert.equal(await echo(doomed, 'ok'), 'ok')
  const closed = once(doomed, 'close')
  watch.sessions[0]!.destroy()
  const [code] = await closed
  assert.equal(code, 1006, 'the client sees its connection reset, no close frame')

  const fresh = await openWs(t, `ws://127.0.0.1:${front.port}/ws/fresh`)
  assert.equal(await echo(fresh, 'again'), 'again')
  assert.equal(watch.sessions.length, 2)
  assert.equal(fresh.readyState, WebSocket.OPEN)
})
