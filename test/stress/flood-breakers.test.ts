import { test } from 'node:test'
import assert from 'node:assert/strict'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { proxy } from '@switchyard/core'
import { startFixture } from '../helpers/child.ts'
import { startBackend } from '../helpers/lb-backends.ts'
import { plainGet } from '../helpers/lb-proxy.ts'
import { gaugesAtZero, watchHandles } from '../helpers/leak-check.ts'
import { startProxy, stat } from '../helpers/start-proxy.ts'
import { figures } from './figures.ts'

const UPGRADES = Number(process.env.STRESS_FLOOD_UPGRADES ?? 10_000)
const MAX_REQUESTS = 100
const rows = figures('flood-breakers')

// The clients live in a child process: only the proxy's sockets (and the upstream's 100) count here.
test(`a flood of ${UPGRADES} upgrades against maxRequests ${MAX_REQUESTS} never opens more than ${MAX_REQUESTS} upstream connections, and the proxy answers throughout`, { timeout: 180_000 }, async (t) => {
  const backend = await startBackend(t, 'b0')
  const { app, port } = await startProxy(t, {
    clusters: { up: { endpoints: [backend.address], circuitBreakers: { maxRequests: MAX_REQUESTS } } },
    upgradeConfigs: [{ upgradeType: 'websocket' }]
  }, (app) => {
    app.get('/flood', { upstream: { cluster: 'up' } }, proxy)
    app.get('/ping', async () => 'pong')
  })
  const watch = watchHandles()
  await watch.mark()
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()

  const started = performance.now()
  const clients = await startFixture(t, 'flood-clients.ts', [String(port), String(UPGRADES), '256'])
  assert.deepEqual(clients.ready, { half: Math.floor(UPGRADES / 2) })
  // Half-way through the flood: a plain request on the same proxy is answered.
  const pings: number[] = []
  for (let i = 0; i < 10; i++) {
    const sent = performance.now()
    const answer = await plainGet(port, { path: '/ping' })
    assert.deepEqual([answer.status, answer.body], [200, 'pong'])
    pings.push(performance.now() - sent)
  }
  const end = JSON.parse((await clients.lines.next()).value as string) as { statuses: Record<string, number>, errors: number }
  const took = performance.now() - started
  loop.disable()
  assert.deepEqual(end, { statuses: { 101: MAX_REQUESTS, 503: UPGRADES - MAX_REQUESTS }, errors: 0 })
  assert.equal(backend.connections, MAX_REQUESTS, 'upstream connections accepted')
  assert.ok(backend.peakOpen <= MAX_REQUESTS)
  assert.equal(stat(app, 'cluster.up.upstream_rq_pending_overflow'), UPGRADES - MAX_REQUESTS)
  assert.equal(stat(app, 'cluster.up.upstream_rq_active'), MAX_REQUESTS)

  clients.child.stdin!.write('ping\n')
  assert.deepEqual(JSON.parse((await clients.lines.next()).value as string), { pinged: MAX_REQUESTS })
  rows.add(t, 'upgrades answered (maxRequests 100)', `${end.statuses[101]} × 101, ${end.statuses[503]} × 503 overflow, in ${(took / 1000).toFixed(1)} s`)
  rows.add(t, 'upstream connections accepted / most open at once', `${backend.connections} / ${backend.peakOpen}`)
  rows.add(t, 'plain request during the flood, slowest of 10', `${Math.max(...pings).toFixed(1)} ms`)
  rows.add(t, 'event-loop delay during the flood (p99 / max)', `${(loop.percentile(99) / 1e6).toFixed(1)} ms / ${(loop.max / 1e6).toFixed(1)} ms`)

  clients.child.stdin!.write('close\n')
  assert.deepEqual(JSON.parse((await clients.lines.next()).value as string), { closed: MAX_REQUESTS })
  await watch.settled()
  await gaugesAtZero([app])
})
