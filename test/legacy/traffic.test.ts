import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { proxy } from '@switchyard/core'
import { legacyCloses, rawUpstream, readHead, startLegacyProxy, SWITCHING } from '../helpers/legacy-net.ts'
import { rawTextClient, wsUpgradeHead } from '../helpers/raw-client.ts'

/** A raw upstream that counts upgrades, accepts each and closes it at once. */
async function countingUpstream (t: TestContext, name: string): Promise<{ port: number, count: () => number }> {
  let n = 0
  const port = await rawUpstream(t, async (s) => {
    s.on('error', () => {})
    await readHead(s)
    n++
    s.end(`${SWITCHING}${name}`)
    s.resume()
  })
  return { port, count: () => n }
}

/** One short-lived legacy WebSocket: resolves with the name the upstream sent after its 101. */
async function oneConnection (t: TestContext, port: number, path: string): Promise<string> {
  const client = await rawTextClient(t, port, wsUpgradeHead(path))
  await client.closed
  const body = client.received.slice(client.received.indexOf('\r\n\r\n') + 4)
  client.socket.destroy()
  return body
}

test('splits 1,000 legacy connections between weighted clusters within a few percent of the weights', async (t) => {
  const a = await countingUpstream(t, 'a')
  const b = await countingUpstream(t, 'b')
  const { port, app } = await startLegacyProxy(t, {
    clusters: { a: { endpoints: [`127.0.0.1:${a.port}`] }, b: { endpoints: [`127.0.0.1:${b.port}`] } }
  }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { weightedClusters: [{ cluster: 'a', weight: 25 }, { cluster: 'b', weight: 75 }] } }, proxy)
  })
  const closes = legacyCloses(t)
  const total = 1000
  const seen = { a: 0, b: 0 } as Record<string, number>
  let next = 0
  // 50 connections at a time, well below the open-files limit.
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < total) {
      next++
      const name = await oneConnection(t, port, '/chat')
      seen[name] = (seen[name] ?? 0) + 1
    }
  }))
  assert.equal(seen.a! + seen.b!, total)
  assert.equal(a.count(), seen.a)
  assert.equal(b.count(), seen.b)
  // Binomial(1000, 0.25): a standard deviation of 1.4 points; 5 points is over 3.5 of them.
  assert.ok(Math.abs(seen.a! / total - 0.25) < 0.05, `cluster a got ${seen.a} of ${total}`)
  await closes.waitFor(total)
  const stats = app.switchyard.stats()
  assert.equal(stats.downstream_cx_websocket_total, total)
  assert.equal(stats.downstream_cx_websocket_active, 0)
  assert.equal(stats['cluster.a.upstream_cx_total'], seen.a)
  assert.equal(stats['cluster.b.upstream_cx_total'], seen.b)
})

test('shifts legacy connections with runtime.set, obeyed by the very next connection', async (t) => {
  const stable = await countingUpstream(t, 'stable')
  const canary = await countingUpstream(t, 'canary')
  const { port, app } = await startLegacyProxy(t, {
    clusters: { stable: { endpoints: [`127.0.0.1:${stable.port}`] }, canary: { endpoints: [`127.0.0.1:${canary.port}`] } }
  }, (app) => {
    app.get('/chat', {
      useWebsocket: true,
      upstream: { cluster: 'canary', runtimeFraction: { runtimeKey: 'chat.canary_percent', defaultPercent: 0, fallbackCluster: 'stable' } }
    }, proxy)
  })
  for (let i = 0; i < 5; i++) assert.equal(await oneConnection(t, port, '/chat'), 'stable')
  app.switchyard.runtime.set('chat.canary_percent', 100)
  for (let i = 0; i < 5; i++) assert.equal(await oneConnection(t, port, '/chat'), 'canary')
  app.switchyard.runtime.set('chat.canary_percent', 0)
  assert.equal(await oneConnection(t, port, '/chat'), 'stable')

  // Half and half: both clusters get a share of 200 connections.
  app.switchyard.runtime.set('chat.canary_percent', 50)
  const names: string[] = []
  for (let i = 0; i < 200; i++) names.push(await oneConnection(t, port, '/chat'))
  const canaryShare = names.filter(n => n === 'canary').length / names.length
  assert.ok(canaryShare > 0.35 && canaryShare < 0.65, `canary got ${canaryShare * 100}%`)
  assert.equal(stable.count() + canary.count(), 211)
})
