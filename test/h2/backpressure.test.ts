import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { startNode } from '../helpers/h2-mesh.ts'
import { accept, rawUpstream } from '../helpers/echo-upstream.ts'
import { rawClient, upgradeHead } from '../helpers/raw-client.ts'
import { watchProxySockets, heldBetween, flood } from '../helpers/flood.ts'

// Across the hop the bytes sit in the front's tunnel, the HTTP/2 stream (its flow-control window, 64 KiB by
// default, RFC 9113 §5.2), the sidecar's tunnel and the loopback buffers between: a few hundred KiB, not
// what the client sends.
const BOUND = 1024 * 1024

/**
 * A tunnel client → front → HTTP/2 → sidecar → app, past its 101; with the front's socket to the client
 * and the sidecar's socket to the app, whose byte counts say what the two proxies hold between them.
 */
async function hopTunnel (t: TestContext) {
  const app = await rawUpstream(t)
  const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${app.port}`, upstreamProtocol: 'http1' })
  const front = await startNode(t, { listen: 'http1', upstream: sidecar.origin, upstreamProtocol: 'http2' })
  const frontSockets = watchProxySockets(t, front.app)
  const sidecarSockets = watchProxySockets(t, sidecar.app)
  const client = await rawClient(t, front.port, upgradeHead('/raw/flood', 'foo'))
  const conn = await app.next()
  accept(conn)
  const head = await client.head()
  assert.equal(head.status, 101)
  return { client, conn, headLength: head.raw.length, down: frontSockets.downstream(), toApp: sidecarSockets.upstream(app.port) }
}

test('an upgrade across the HTTP/2 hop holds backpressure: an app that stops reading stops the client, and the proxies hold a bounded amount', async (t) => {
  const { client, conn, down, toApp } = await hopTunnel(t)
  conn.socket.pause()

  // The two request heads differ in size: measure from here.
  const heads = heldBetween(down, toApp)
  let maxHeld = 0
  const sample = (): void => { maxHeld = Math.max(maxHeld, heldBetween(down, toApp) - heads) }
  const result = await flood(client.socket, 256 * 1024 * 1024, sample, down)
  sample()
  t.diagnostic(`held at most ${maxHeld} bytes across both hops while ${result.sent} bytes were sent`)
  assert.ok(result.stalled, 'the client sent everything: nothing pushed back')
  assert.ok(maxHeld <= BOUND, `the hop held ${maxHeld} bytes (bound ${BOUND})`)

  // Nothing was lost: once the app reads again, every byte arrives, and the client's end follows.
  let received = conn.rest.length
  conn.socket.on('data', (d: Buffer) => { received += d.length })
  conn.socket.resume()
  client.socket.end()
  await once(conn.socket, 'end')
  assert.equal(received, result.written)
})

test('an upgrade across the HTTP/2 hop holds backpressure: a client that stops reading stops the app, and the proxies hold a bounded amount', async (t) => {
  const { client, conn, down, toApp: fromApp, headLength } = await hopTunnel(t)
  client.socket.pause()

  const heads = heldBetween(fromApp, down)
  let maxHeld = 0
  const sample = (): void => { maxHeld = Math.max(maxHeld, heldBetween(fromApp, down) - heads) }
  const result = await flood(conn.socket, 256 * 1024 * 1024, sample, fromApp)
  sample()
  t.diagnostic(`held at most ${maxHeld} bytes across both hops while ${result.sent} bytes were sent`)
  assert.ok(result.stalled, 'the app sent everything: nothing pushed back')
  assert.ok(maxHeld <= BOUND, `the hop held ${maxHeld} bytes (bound ${BOUND})`)

  client.socket.resume()
  conn.socket.end()
  await client.done
  assert.equal(client.received.length - headLength, result.written)
})
