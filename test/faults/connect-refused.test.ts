import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rawClient, wsUpgradeHead, parseHead } from '../helpers/raw-client.ts'
import { modes, startMode } from '../helpers/tunnel-modes.ts'
import { startNode } from '../helpers/h2-mesh.ts'
import { gaugesAtZero, watchHandles } from '../helpers/leak-check.ts'
import { freePort } from '../helpers/net.ts'

// Envoy answers 503 when the upstream connection fails ("upstream connect error or disconnect/reset
// before headers"); its legacy WebSocket handler answered 504. No tunnel is made and nothing is held.
for (const mode of modes) {
  const status = mode === 'legacy' ? 504 : 503
  test(`an upgrade to an endpoint that refuses the connection gets ${status} and frees everything (${mode})`, { timeout: 10_000 }, async (t) => {
    const watch = watchHandles()
    const { port, apps, h2Port } = await startMode(t, mode, await freePort())
    await watch.mark()
    const client = await rawClient(t, port, wsUpgradeHead('/refused'))
    await client.done
    client.socket.end()
    assert.equal(parseHead(client.received)?.status, status)
    await watch.settled(h2Port === undefined ? {} : { keep: (s) => s.remotePort === h2Port || s.localPort === h2Port, extra: 2 })
    await gaugesAtZero(apps)
  })
}

test('an upgrade through a front whose sidecar refuses the connection gets 503 and frees everything', { timeout: 10_000 }, async (t) => {
  const watch = watchHandles()
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${await freePort()}`, upstreamProtocol: 'http2' })
  await watch.mark()
  const client = await rawClient(t, front.port, wsUpgradeHead('/refused'))
  await client.done
  client.socket.end()
  assert.equal(parseHead(client.received)?.status, 503)
  await watch.settled()
  await gaugesAtZero([front.app])
})
