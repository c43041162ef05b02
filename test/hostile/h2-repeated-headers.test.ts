import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rawClient } from '../helpers/raw-client.ts'
import { startEchoApp, startNode } from '../helpers/h2-mesh.ts'
import { watchHandles } from '../helpers/leak-check.ts'
import { closesWithin } from '../helpers/edge-front.ts'

/**
 * Header lines a client repeats, through front (HTTP/1.1) → HTTP/2 → sidecar → app (HTTP/1.1). Node's
 * HTTP/2 client refuses an array for the fields it holds single-valued (`authorization`, `user-agent`…),
 * so an upgrade that forwarded them as sent was refused at the front and answered 503 as an upstream
 * connect error, while the same request on a plain route, sent by undici (which joins repeated values
 * with `, `, RFC 9110 §5.3), got 200. An upgrade forwards what a plain request forwards.
 */

const GRACE = 100
const REPEATED = 'Authorization: Basic YTph\r\nAuthorization: Basic Yjpi\r\nUser-Agent: one\r\nUser-Agent: two\r\n' +
  'X-Trace: 1\r\nX-Trace: 2\r\nCookie: a=1\r\nCookie: b=2\r\n'

test('repeated single-value headers cross the HTTP/2 hop on a WebSocket upgrade as on a plain request', { timeout: 15_000 }, async (t) => {
  const app = await startEchoApp(t)
  const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${app.port}`, upstreamProtocol: 'http1' })
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${sidecar.port}`, upstreamProtocol: 'http2', core: { shutdownGracePeriod: GRACE } })
  const watch = watchHandles()
  await watch.mark()

  const plain = await rawClient(t, front.port, `GET /plain HTTP/1.1\r\nHost: mesh.test\r\n${REPEATED}Connection: close\r\n\r\n`)
  await plain.done
  const head = await plain.head()
  assert.equal(head.status, 200)
  const seenPlain = (JSON.parse(head.rest.toString()) as { headers: Record<string, string> }).headers
  plain.socket.end()

  const upgrade = await rawClient(t, front.port, 'GET /ws HTTP/1.1\r\nHost: mesh.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${REPEATED}\r\n`)
  const answer = await upgrade.head()
  assert.equal(answer.status, 101, answer.raw)
  const seenUpgrade = app.seen.at(-1)!.headers

  for (const name of ['authorization', 'user-agent', 'x-trace', 'cookie']) {
    assert.equal(seenUpgrade[name], seenPlain[name], `${name}: the upgrade forwards what the plain request forwards`)
  }
  assert.equal(seenUpgrade.authorization, 'Basic YTph, Basic Yjpi')
  assert.equal(seenUpgrade['user-agent'], 'one, two')
  assert.equal(seenUpgrade.cookie, 'a=1; b=2')

  upgrade.socket.end()
  await upgrade.done
  assert.equal(await closesWithin(front.app, GRACE), true, 'app.close() within the grace period plus one second')
  await sidecar.app.close()
  await watch.settled()
})
