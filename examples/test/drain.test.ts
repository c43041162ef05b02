import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { countersWhen, openEvents, meshFor, nextText, openWs, refusedStatus, bearer, testConfig } from './helpers/mesh-clients.ts'

test('closing drains: new upgrades get 503, open tunnels keep working through the grace period, then close', async (t) => {
  const { mesh } = await meshFor(t, testConfig({ front: { port: 0, shutdownGracePeriod: 60_000 } }))
  const base = mesh.url.replace(/^http/, 'ws')
  const open = await openWs(t, base + '/echo')
  const legacy = await openWs(t, base + '/legacy/echo')
  const events = await openEvents(t, mesh.url)

  const closing = mesh.close()
  await countersWhen(mesh, (c) => c.draining === 1)
  assert.equal(await refusedStatus(base + '/chat', bearer), 503)
  // The drain's 503s are counted, and the page shows them with the other refusals.
  await countersWhen(mesh, (c) => c['refused.503'] === 1)
  // The page's event stream is still open and has seen the drain begin.
  assert.equal((await events.until((c) => c.draining === 1)).draining, 1)

  open.send('still here')
  assert.equal(await nextText(open), 'still here', 'an open tunnel works during the grace period')
  open.close(1000)
  await once(open, 'close')
  await countersWhen(mesh, (c) => c['active.h2'] === 0)
  // The grace period is 60 s: the drain ends only because the legacy tunnel closes too.
  legacy.close(1000)
  await closing
  assert.equal(legacy.readyState, legacy.CLOSED)
})

test('what is still open when the grace period ends is closed, a WebSocket with 1001 (going away)', async (t) => {
  const { mesh } = await meshFor(t, testConfig({ front: { port: 0, shutdownGracePeriod: 50 } }))
  const ws = await openWs(t, mesh.url.replace(/^http/, 'ws') + '/echo')
  const closed = once(ws, 'close')
  await mesh.close()
  const [code] = await closed as [number]
  assert.equal(code, 1001)
})
