import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startFixture } from '../helpers/child.ts'
import { gaugesAtZero, watchHandles } from '../helpers/leak-check.ts'
import { startEchoFront } from './echo-front.ts'
import { figures, kib, memoryAfterGc, mib } from './figures.ts'

const TUNNELS = Number(process.env.STRESS_IDLE_TUNNELS ?? 9000)
const rows = figures('load-idle')

// The open-files limit is 20,000 per process and a tunnel holds two sockets in the proxy: the clients
// and the upstream live in child processes so only the proxy's 18,000 sockets count here.
test(`holds ${TUNNELS} concurrent idle tunnels through one front and frees them all`, { timeout: 180_000 }, async (t) => {
  const { app, port } = await startEchoFront(t)
  const watch = watchHandles()
  await watch.mark()
  const before = memoryAfterGc()

  const started = performance.now()
  const clients = await startFixture(t, 'idle-clients.ts', [String(port), String(TUNNELS), '256'])
  const opened = performance.now() - started
  assert.deepEqual(clients.ready, { established: TUNNELS, failed: 0 })
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active, TUNNELS)

  // Every tunnel still carries bytes both ways.
  clients.child.stdin!.write('ping\n')
  assert.deepEqual(JSON.parse((await clients.lines.next()).value as string), { pinged: TUNNELS })

  const held = memoryAfterGc()
  const heapPer = (held.heapUsed - before.heapUsed) / TUNNELS
  const rssPer = (held.rss - before.rss) / TUNNELS
  rows.add(t, 'idle tunnels established (one front, new style)', `${TUNNELS} of ${TUNNELS}, 0 failed, in ${(opened / 1000).toFixed(1)} s`)
  rows.add(t, 'front heap per idle tunnel (after GC)', kib(heapPer))
  rows.add(t, 'front RSS per idle tunnel', kib(rssPer))
  rows.add(t, 'front RSS with all tunnels open', mib(held.rss))
  // Generous bounds: a tunnel holds two sockets, a stream and its filter chain, never a buffer of data.
  assert.ok(heapPer < 32 * 1024, `heap per tunnel ${kib(heapPer)} is over 32 KiB`)
  assert.ok(rssPer < 64 * 1024, `RSS per tunnel ${kib(rssPer)} is over 64 KiB`)

  clients.child.stdin!.write('close\n')
  assert.deepEqual(JSON.parse((await clients.lines.next()).value as string), { closed: TUNNELS })
  await watch.settled()
  await gaugesAtZero([app])
  const after = memoryAfterGc()
  rows.add(t, 'front heap after all closed, vs before', `${mib(after.heapUsed)} vs ${mib(before.heapUsed)}`)
  assert.ok(after.heapUsed - before.heapUsed < 16 * 1024 * 1024, 'heap not back near where it started')
})
