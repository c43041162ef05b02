import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startFixture } from '../helpers/child.ts'
import { startNode, watchHttp2 } from '../helpers/h2-mesh.ts'
import { gaugesAtZero, watchHandles } from '../helpers/leak-check.ts'
import { figures, kib, memoryAfterGc } from './figures.ts'

const TUNNELS = Number(process.env.STRESS_H2_TUNNELS ?? 1000)
const rows = figures('load-h2')

// RFC 9113 multiplexing: the front's pool opens another connection only when the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS (the sidecar's maxConcurrentStreams, 100) is reached, so a thousand
// tunnels share ten HTTP/2 connections.
const CONNECTIONS = Math.ceil(TUNNELS / 100)
test(`carries ${TUNNELS} tunnels over ${CONNECTIONS} HTTP/2 connections from the front to the sidecar`, { timeout: 120_000 }, async (t) => {
  const upstream = await startFixture(t, 'upgrade-echo-server.ts')
  const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${upstream.ready.port}`, upstreamProtocol: 'http1' })
  const seen = watchHttp2(sidecar.app.server)
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${sidecar.port}`, upstreamProtocol: 'http2' })
  const watch = watchHandles()
  await watch.mark()
  const before = memoryAfterGc()

  const started = performance.now()
  const clients = await startFixture(t, 'idle-clients.ts', [String(front.port), String(TUNNELS), '128'])
  const opened = performance.now() - started
  assert.deepEqual(clients.ready, { established: TUNNELS, failed: 0 })
  clients.child.stdin!.write('ping\n')
  assert.deepEqual(JSON.parse((await clients.lines.next()).value as string), { pinged: TUNNELS })

  assert.equal(seen.sessions.length, CONNECTIONS, 'HTTP/2 connections the sidecar accepted')
  assert.equal(seen.connects.length, TUNNELS)
  assert.equal(watch.sockets.filter((s) => s.remotePort === sidecar.port).length, CONNECTIONS, 'HTTP/2 connections the front opened')
  assert.equal(front.app.switchyard.stats().downstream_cx_upgrades_active, TUNNELS)
  assert.equal(sidecar.app.switchyard.stats().downstream_cx_upgrades_active, TUNNELS)

  const held = memoryAfterGc()
  rows.add(t, 'tunnels over HTTP/2 connections of 100 streams (front → sidecar)', `${TUNNELS} of ${TUNNELS} on ${seen.sessions.length} connections, in ${(opened / 1000).toFixed(1)} s`)
  rows.add(t, 'front + sidecar heap per tunnel (after GC)', kib((held.heapUsed - before.heapUsed) / TUNNELS))

  clients.child.stdin!.write('close\n')
  assert.deepEqual(JSON.parse((await clients.lines.next()).value as string), { closed: TUNNELS })
  const pooled = new Set(watch.sockets.filter((s) => s.remotePort === sidecar.port || s.localPort === sidecar.port))
  await watch.settled({ keep: (s) => pooled.has(s), extra: pooled.size })
  await gaugesAtZero([front.app, sidecar.app])
})
