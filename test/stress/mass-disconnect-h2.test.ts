import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once, setMaxListeners } from 'node:events'
import { startFixture } from '../helpers/child.ts'
import { startNode } from '../helpers/h2-mesh.ts'
import { rawClient } from '../helpers/raw-client.ts'
import { gaugesAtZero, watchHandles } from '../helpers/leak-check.ts'
import { figures } from './figures.ts'

const TUNNELS = Number(process.env.STRESS_BURST_TUNNELS ?? 1000)
const IN_FLIGHT = 256 * 1024
const AFTER = 100
const rows = figures('mass-disconnect-h2')

const upgrade = 'GET /after HTTP/1.1\r\nHost: stress.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'

// Every tunnel killed at once leaves the sidecar's HTTP/2 sessions with data queued toward streams that
// are reset, which Node 20 keeps counting against each session's memory: the hop must stay usable at
// once (no session refusing every stream, no refused stream sent again on the session that refused it),
// and every socket and stream is freed.
test(`${TUNNELS} tunnels through the HTTP/2 hop killed at once with ${IN_FLIGHT / 1024} KiB in flight each leave the hop serving`, { timeout: 180_000 }, async (t) => {
  const upstream = await startFixture(t, 'upgrade-echo-server.ts')
  const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${upstream.ready.port}`, upstreamProtocol: 'http1' })
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${sidecar.port}`, upstreamProtocol: 'http2' })
  const watch = watchHandles()
  await watch.mark()

  const clients = await startFixture(t, 'burst-clients.ts', [String(front.port), String(TUNNELS), String(IN_FLIGHT), '128'])
  assert.deepEqual(clients.ready, { established: TUNNELS, failed: 0 })
  clients.child.stdin!.write('kill\n')
  assert.deepEqual(JSON.parse((await clients.lines.next()).value as string), { killed: TUNNELS })
  // Once both proxies have torn every killed tunnel down (the gauges are back at zero), all at once. The
  // deadline is the test's: an upgrade not answered by then counts as lost.
  await gaugesAtZero([front.app, sidecar.app])
  const deadline = AbortSignal.timeout(2000)
  setMaxListeners(AFTER, deadline)
  const statuses = await Promise.all(Array.from({ length: AFTER }, async () => {
    const client = await rawClient(t, front.port, upgrade)
    const lost = once(deadline, 'abort').then(() => 0)
    const status = await Promise.race([client.head().then((h) => h.status, () => -1), lost])
    return { client, status }
  }))
  const counts: Record<string, number> = {}
  for (const { status } of statuses) counts[status] = (counts[status] ?? 0) + 1
  rows.add(t, `answers to ${AFTER} upgrades right after ${TUNNELS} tunnels were killed`, JSON.stringify(counts))
  assert.deepEqual(counts, { 101: AFTER }, 'every upgrade after the mass disconnect is accepted (0 = no answer within 2 s)')

  const stats = front.app.switchyard.stats()
  rows.add(t, 'front retries and sessions retired by the sidecar', `upstream_rq_retry ${stats['cluster.mesh.upstream_rq_retry'] ?? 0}, upstream_cx_destroy_remote_with_active_rq ${stats['cluster.mesh.upstream_cx_destroy_remote_with_active_rq'] ?? 0}`)

  for (const { client } of statuses) client.socket.end()
  await gaugesAtZero([front.app, sidecar.app])
  // The front keeps its pooled HTTP/2 connections (both ends are in this process); everything else closes.
  const pooled = watch.sockets.filter((s) => s.remotePort === sidecar.port || s.localPort === sidecar.port)
  await watch.settled({ keep: (s) => pooled.includes(s), extra: pooled.length })
})
