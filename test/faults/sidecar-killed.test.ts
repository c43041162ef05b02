import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rawClient, wsUpgradeHead, parseHead, type RawClient } from '../helpers/raw-client.ts'
import { createUpgradeEchoServer } from '../helpers/upgrade-echo.ts'
import { startFixture } from '../helpers/child.ts'
import { startNode } from '../helpers/h2-mesh.ts'
import { gaugesAtZero, watchHandles } from '../helpers/leak-check.ts'
import { listen } from '../helpers/net.ts'

const TUNNELS = 50

// The sidecar process dies (SIGKILL) with many tunnels multiplexed on the front's one HTTP/2 connection:
// the connection's loss ends every stream on it, so every client behind it must be closed, and the next
// upgrade opens a new connection (here refused: 503).
test(`a sidecar killed with ${TUNNELS} tunnels on one HTTP/2 connection closes every client and frees everything`, { timeout: 60_000 }, async (t) => {
  const watch = watchHandles()
  const appPort = await listen(t, createUpgradeEchoServer())
  const sidecar = await startFixture(t, 'h2-sidecar.ts', [String(appPort)])
  const sidecarPort = sidecar.ready.port
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${sidecarPort}`, upstreamProtocol: 'http2' })
  await watch.mark()

  const clients: RawClient[] = []
  for (let i = 0; i < TUNNELS; i++) clients.push(await rawClient(t, front.port, wsUpgradeHead(`/tunnel/${i}`)))
  for (const client of clients) assert.equal((await client.head()).status, 101)
  for (const [i, client] of clients.entries()) client.socket.write(`hello ${i}`)
  await Promise.all(clients.map((c, i) => c.until((d) => d.includes(`hello ${i}`))))
  assert.equal(watch.sockets.filter((s) => s.remotePort === sidecarPort).length, 1, 'the front opened more than one HTTP/2 connection')
  assert.equal(front.app.switchyard.stats().downstream_cx_upgrades_active, TUNNELS)

  await sidecar.kill()
  await Promise.all(clients.map((c) => c.done))
  // The clients are half-open sockets: they end their side once the proxy has ended its own.
  for (const c of clients) c.socket.end()

  const late = await rawClient(t, front.port, wsUpgradeHead('/late'))
  await late.done
  late.socket.end()
  assert.equal(parseHead(late.received)?.status, 503)

  await watch.settled()
  await gaugesAtZero([front.app])
})
