import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { proxy, type SwitchyardOptions } from '@switchyard/core'
import { startFixture, type Fixture } from '../helpers/child.ts'
import { startProxy } from '../helpers/start-proxy.ts'
import { watchHandles } from '../helpers/leak-check.ts'
import { closesWithin } from '../helpers/edge-front.ts'
import { figures, kib, memoryAfterGc } from './figures.ts'

const CONNECTIONS = Number(process.env.STRESS_SLOW_BODIES ?? 1000)
/** slowhttptest's slow-body mode sends a byte every 10 s; faster here, so every stream stays busy. */
const TRICKLE_MS = 1000
const GRACE = 500
const rows = figures('slow-bodies')

/** A front proxying POSTs to the echo upstream (a child), counting the requests Fastify has started. */
async function slowBodyFront (t: TestContext, core: Partial<SwitchyardOptions>): Promise<{ app: FastifyInstance, port: number, arrived (n: number): Promise<void> }> {
  const upstream = await startFixture(t, 'upgrade-echo-server.ts')
  let seen = 0
  const waiting: Array<[number, () => void]> = []
  const front = await startProxy(t, { clusters: { up: { endpoints: [`127.0.0.1:${upstream.ready.port}`] } }, shutdownGracePeriod: GRACE, ...core }, (app) => {
    app.addHook('onRequest', async () => {
      seen++
      for (const [i, [n, resolve]] of waiting.entries()) if (seen >= n) { waiting.splice(i, 1); resolve() }
    })
    app.post('/*', { upstream: { cluster: 'up' } }, proxy)
  })
  return { ...front, arrived: (n) => seen >= n ? Promise.resolve() : new Promise((resolve) => { waiting.push([n, resolve]) }) }
}

async function command (clients: Fixture, line: string): Promise<Record<string, unknown>> {
  clients.child.stdin!.write(`${line}\n`)
  return JSON.parse((await clients.lines.next()).value as string) as Record<string, unknown>
}

// The slow-body attack with the default timeouts (streamIdleTimeout 300 s, requestTimeout off, as
// Envoy): a body that keeps trickling is never idle, so the connections stay; what must hold is that each
// costs little, and that app.close() ends them all within the grace period plus one second.
test(`${CONNECTIONS} slow-body requests with the default timeouts hold little each, and app.close() ends them in bounded time`, { timeout: 120_000 }, async (t) => {
  const front = await slowBodyFront(t, {})
  const watch = watchHandles()
  await watch.mark()
  const before = memoryAfterGc()
  const clients = await startFixture(t, 'slow-body-clients.ts', [String(front.port), String(CONNECTIONS), String(TRICKLE_MS)])
  assert.deepEqual(clients.ready, { opened: CONNECTIONS, failed: 0 })
  await front.arrived(CONNECTIONS)
  const held = memoryAfterGc()
  const heapPer = (held.heapUsed - before.heapUsed) / CONNECTIONS
  rows.add(t, `slow-body requests held with the default timeouts (${TRICKLE_MS} ms per byte)`, `${CONNECTIONS} of ${CONNECTIONS}`)
  rows.add(t, 'front heap per slow-body request (after GC)', kib(heapPer))
  assert.ok(heapPer < 64 * 1024, `heap per slow-body request ${kib(heapPer)} is over 64 KiB`)

  const started = performance.now()
  assert.equal(await closesWithin(front.app, GRACE), true, 'app.close() within the grace period plus one second')
  rows.add(t, `app.close() with ${CONNECTIONS} slow bodies open (grace ${GRACE} ms)`, `${((performance.now() - started) / 1000).toFixed(2)} s`)
  assert.deepEqual(await command(clients, 'wait-closed'), { closed: CONNECTIONS })
  await watch.settled()
})

test(`${CONNECTIONS} slow-body requests get 408 at requestTimeout and free their sockets while the front serves on`, { timeout: 120_000 }, async (t) => {
  const front = await slowBodyFront(t, { requestTimeout: 2000 })
  const watch = watchHandles()
  await watch.mark()
  const clients = await startFixture(t, 'slow-body-clients.ts', [String(front.port), String(CONNECTIONS), String(TRICKLE_MS)])
  assert.deepEqual(clients.ready, { opened: CONNECTIONS, failed: 0 })
  const answers = await command(clients, 'wait-answers')
  rows.add(t, `answers to ${CONNECTIONS} slow-body requests with requestTimeout 2000 ms`, JSON.stringify(answers))
  assert.deepEqual(answers, { statuses: { 408: CONNECTIONS }, closed: 0 })
  assert.equal(front.app.switchyard.stats().downstream_rq_timeout, CONNECTIONS)
  assert.deepEqual(await command(clients, 'wait-closed'), { closed: CONNECTIONS })
  // Every socket is gone while the front is still up.
  await watch.settled()
  assert.equal(await closesWithin(front.app, GRACE), true)
})
