import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type http2 from 'node:http2'
import { rawClient, wsUpgradeHead, parseHead, type RawClient } from '../helpers/raw-client.ts'
import { createUpgradeEchoServer } from '../helpers/upgrade-echo.ts'
import { modes, startMode } from '../helpers/tunnel-modes.ts'
import { gaugesAtZero } from '../helpers/leak-check.ts'
import { listen } from '../helpers/net.ts'
import { h2Session, startEchoApp, startNode } from '../helpers/h2-mesh.ts'

async function openTunnel (t: Parameters<typeof rawClient>[0], port: number, path: string): Promise<RawClient> {
  const client = await rawClient(t, port, wsUpgradeHead(path))
  assert.equal((await client.head()).status, 101)
  return client
}

async function echoes (client: RawClient, text: string): Promise<void> {
  const want = client.received.length + text.length
  client.socket.write(text)
  await client.until((d) => d.length >= want && d.includes(text))
}

// `shutdownGracePeriod`: from the start of `app.close()` new upgrades get 503 (Envoy's drain: the
// listener stops taking new streams), open tunnels keep running for the period and close returns as
// soon as the last one ends. For H1→H2→H1 it is the sidecar that closes: its extended CONNECT listener
// answers 503, which the front relays.
for (const mode of modes) {
  test(`during the grace period new upgrades get 503, open tunnels keep working, and close returns when they end (${mode})`, { timeout: 8_000 }, async (t) => {
    const upstreamPort = await listen(t, createUpgradeEchoServer())
    // The period is longer than the test's timeout: close can only return because the tunnel ended.
    const { port, apps } = await startMode(t, mode, upstreamPort, { core: { shutdownGracePeriod: 60_000 } })
    const closingApp = apps.at(-1)!
    const open = await openTunnel(t, port, '/open')
    await echoes(open, 'before close')

    let closed = false
    const closing = closingApp.close().then(() => { closed = true })
    const refused = await rawClient(t, port, wsUpgradeHead('/new'))
    await refused.done
    refused.socket.end()
    assert.equal(parseHead(refused.received)?.status, 503)
    assert.equal(closingApp.switchyard.stats().downstream_rq_drain_refused, 1, 'the drain\'s 503 is counted')

    await echoes(open, 'during the grace period')
    assert.equal(closed, false)
    open.socket.end()
    await open.done
    await closing
    await gaugesAtZero(apps)
  })
}

for (const mode of modes) {
  test(`after the grace period the tunnels still open are closed and close returns (${mode})`, { timeout: 8_000 }, async (t) => {
    const upstreamPort = await listen(t, createUpgradeEchoServer())
    const grace = 300
    const { port, apps } = await startMode(t, mode, upstreamPort, { core: { shutdownGracePeriod: grace } })
    const closingApp = apps.at(-1)!
    const tunnels = [await openTunnel(t, port, '/a'), await openTunnel(t, port, '/b')]
    const started = performance.now()
    await closingApp.close()
    // Timers never fire early (a millisecond of rounding aside): close waited the whole period.
    assert.ok(performance.now() - started >= grace - 1, 'close returned before the grace period ended')
    await Promise.all(tunnels.map((c) => c.done))
    for (const c of tunnels) c.socket.end()
    await gaugesAtZero(apps)
  })
}

test('close returns when an HTTP/2 client keeps its connection open behind a refused stream it never reads', { timeout: 10_000 }, async (t) => {
  const echoApp = await startEchoApp(t)
  const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${echoApp.port}`, upstreamProtocol: 'http1' })
  const session = await h2Session(t, sidecar.origin)
  // No CONNECT route: Fastify's 404, whose body this client never reads, so its stream (and socket) stay open.
  const stream = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:1' }, { endStream: false })
  stream.on('error', () => {})
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  assert.equal(headers[':status'], 404)
  // Before the fix the server's close waited on that socket for as long as the client kept it.
  await sidecar.app.close()
  const open = await new Promise<number>((resolve, reject) => sidecar.app.server.getConnections((err, n) => err ? reject(err) : resolve(n)))
  assert.equal(open, 0)
})
