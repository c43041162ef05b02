/**
 * Circuit breakers through the proxy, each mode: past a limit the answer is Envoy's overflow (503,
 * `x-envoy-overloaded: true`, its exact body, flag UO), counted, and nothing more reaches the upstream —
 * counted at the upstream itself. A tunnel holds its request and its connection for its whole life; a
 * request waiting for a connection waits in a bounded queue.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { createAccessLogFilter, type AccessLogLine } from '@switchyard/filters'
import { startBackends, type Backend } from '../helpers/lb-backends.ts'
import { echoes, startLbProxy, tunnelModes, type Answer, type LbProxy } from '../helpers/lb-proxy.ts'
import { stat } from '../helpers/start-proxy.ts'

const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow'

function assertOverflow (a: Answer): void {
  assert.equal(a.status, 503)
  assert.equal(a.headers['x-envoy-overloaded'], 'true')
  assert.equal(a.headers['content-type'], 'text/plain')
  assert.equal(a.body, OVERFLOW_BODY)
  assert.equal(a.backend, undefined, 'answered by the proxy')
}

/** The front's access-log lines (new style and the HTTP/2 hop run the default chain; legacy runs none). */
function accessLog (): { lines: AccessLogLine[], filters: ReturnType<typeof createAccessLogFilter>[] } {
  const lines: AccessLogLine[] = []
  return { lines, filters: [createAccessLogFilter({ logger: { info: (line) => lines.push(line as AccessLogLine) } })] }
}

/** Turns of the event loop until `condition` holds (a gauge moving on a request the proxy is reading); bounded. */
async function eventually (condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 20_000 && !condition(); turn++) await new Promise((resolve) => setImmediate(resolve))
  assert.ok(condition(), what)
}

/** The upstream connections behind the front's cluster: at the backends (behind the sidecars in H1→H2→H1). */
const connectionsAt = (backends: Backend[]): number => backends.reduce((n, b) => n + b.connections, 0)

for (const mode of tunnelModes) {
  test(`maxRequests: open tunnels hold their requests; past the limit the answer is 503 overflow and nothing reaches the upstream (${mode})`, { timeout: 30_000 }, async (t) => {
    const backends = await startBackends(t, 2)
    const log = accessLog()
    const lb = await startLbProxy(t, mode, backends, { cluster: { circuitBreakers: { maxRequests: 5 } }, core: { filters: log.filters } })
    const held = []
    for (let i = 0; i < 5; i++) {
      const a = await lb.send({ hold: true })
      assert.equal(a.status, 101)
      held.push(a.client!)
    }
    const refused = [await lb.send(), await lb.send()]
    for (const a of refused) assertOverflow(a)
    assert.equal(stat(lb.front, 'cluster.up.upstream_rq_pending_overflow'), 2, 'Envoy counts a request overflow as upstream_rq_pending_overflow')
    assert.equal(stat(lb.front, 'cluster.up.upstream_rq_active'), 5)
    assert.equal(stat(lb.front, 'cluster.up.circuit_breakers.default.rq_open'), 1)
    assert.equal(connectionsAt(backends), 5, 'the refused upgrades opened no upstream connection')
    if (mode !== 'legacy') {
      const flagged = log.lines.filter((l) => l.responseFlags === 'UO')
      assert.equal(flagged.length, 2)
      assert.equal(flagged[0]!.status, 503)
    }
    // The tunnels were never disturbed, and one that ends frees its request for the next upgrade.
    for (const c of held) assert.ok(await echoes(c, 'held'))
    held.pop()!.socket.destroy()
    await eventually(() => stat(lb.front, 'cluster.up.upstream_rq_active') === 4, 'the closed tunnel released its request')
    const next = await lb.send({ hold: true })
    assert.equal(next.status, 101)
    assert.equal(stat(lb.front, 'cluster.up.circuit_breakers.default.rq_open'), 1)
    for (const c of [...held, next.client!]) c.socket.destroy()
  })

  test(`a flood of 300 upgrades against maxRequests 20 gets 20 tunnels, 280 overflows, and 20 upstream connections (${mode})`, { timeout: 60_000 }, async (t) => {
    const backends = await startBackends(t, 2)
    const lb = await startLbProxy(t, mode, backends, { cluster: { circuitBreakers: { maxRequests: 20 } } })
    const answers = await Promise.all(Array.from({ length: 300 }, () => lb.send({ hold: true })))
    const accepted = answers.filter((a) => a.status === 101)
    assert.equal(accepted.length, 20)
    for (const a of answers) if (a.status !== 101) assertOverflow(a)
    assert.equal(stat(lb.front, 'cluster.up.upstream_rq_pending_overflow'), 280)
    assert.equal(connectionsAt(backends), 20)
    assert.ok(backends.every((b) => b.peakOpen <= 20))
    for (const a of accepted) assert.ok(await echoes(a.client!, 'after the flood'))
    for (const a of accepted) a.client!.socket.destroy()
  })
}

for (const mode of ['new style', 'legacy'] as const) {
  test(`maxConnections: an upgrade past it waits in the pending queue, one past maxPendingRequests is refused, and the waiter gets the next free connection (${mode})`, { timeout: 30_000 }, async (t) => {
    const [backend] = await startBackends(t, 1)
    const lb = await startLbProxy(t, mode, [backend!], { cluster: { circuitBreakers: { maxConnections: 2, maxPendingRequests: 1 } } })
    const held = [(await lb.send({ hold: true })).client!, (await lb.send({ hold: true })).client!]
    const waiting = lb.send({ hold: true })
    await eventually(() => stat(lb.front, 'cluster.up.upstream_rq_pending_active') === 1, 'the third upgrade is not waiting')
    assert.equal(stat(lb.front, 'cluster.up.upstream_cx_overflow'), 1, 'it found the connections full')
    assertOverflow(await lb.send())
    assert.equal(stat(lb.front, 'cluster.up.upstream_rq_pending_overflow'), 1)
    assert.equal(backend!.connections, 2)

    held.shift()!.socket.destroy()
    const granted = await waiting
    assert.equal(granted.status, 101)
    assert.ok(await echoes(granted.client!, 'granted'))
    assert.equal(stat(lb.front, 'cluster.up.upstream_rq_pending_active'), 0)
    assert.equal(backend!.peakOpen, 2, 'never more than maxConnections open at the upstream')
    for (const c of [...held, granted.client!]) c.socket.destroy()
  })
}

/** A plain GET that resolves on the response head, its body left open (the backend holds `/hold…`). */
function heldGet (port: number): Promise<{ status: number, res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/hold', agent: false }, (res) => resolve({ status: res.statusCode ?? 0, res }))
    req.on('error', reject)
  })
}

test('maxRequests counts plain requests in flight: the one past it gets 503 overflow, flag UO (plain)', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 2)
  const log = accessLog()
  const lb: LbProxy = await startLbProxy(t, 'plain', backends, { cluster: { circuitBreakers: { maxRequests: 3 } }, core: { filters: log.filters } })
  const inFlight = [await heldGet(lb.port), await heldGet(lb.port), await heldGet(lb.port)]
  for (const r of inFlight) assert.equal(r.status, 200)
  const refused = await lb.send()
  assertOverflow(refused)
  assert.equal(stat(lb.front, 'cluster.up.upstream_rq_pending_overflow'), 1)
  assert.equal(log.lines.filter((l) => l.responseFlags === 'UO').length, 1)
  assert.equal(backends[0]!.requests + backends[1]!.requests, 3)
  const ended = inFlight.map((r) => new Promise((resolve) => r.res.on('end', resolve).resume()))
  for (const b of backends) b.release()
  await Promise.all(ended)
  await eventually(() => stat(lb.front, 'cluster.up.upstream_rq_active') === 0, 'the requests released their slots')
  assert.equal((await lb.send()).status, 200)
})

test('maxRetries: a retry past the retry breaker is not sent and is counted (plain)', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 2)
  for (const b of backends) b.status = 500
  const none = await startLbProxy(t, 'plain', backends, {
    cluster: { circuitBreakers: { maxRetries: 0 } },
    upstream: { retries: { numRetries: 2, retryOn: ['5xx'] } }
  })
  const a = await none.send()
  assert.equal(a.status, 500)
  assert.equal(backends[0]!.requests + backends[1]!.requests, 1, 'no retry went out')
  assert.equal(stat(none.front, 'cluster.up.upstream_rq_retry_overflow'), 1)
  assert.equal(stat(none.front, 'cluster.up.upstream_rq_retry'), 0)

  const one = await startLbProxy(t, 'plain', backends, {
    cluster: { circuitBreakers: { maxRetries: 1 } },
    upstream: { retries: { numRetries: 2, retryOn: ['5xx'] } }
  })
  await one.send()
  assert.equal(backends[0]!.requests + backends[1]!.requests, 1 + 3, 'the first try and both retries (the breaker counts requests retrying, not retries)')
  assert.equal(stat(one.front, 'cluster.up.upstream_rq_retry'), 2)
})

test('over the HTTP/2 hop tunnels are streams on one connection: maxConnections does not cap them, maxRequests does (H1→H2→H1)', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 1)
  const lb = await startLbProxy(t, 'H1→H2→H1', backends, { cluster: { circuitBreakers: { maxConnections: 2, maxPendingRequests: 0, maxRequests: 6 } } })
  const sidecar = lb.apps[1]!
  let sessions = 0
  sidecar.server.on('session', () => { sessions++ })
  const held = []
  for (let i = 0; i < 6; i++) {
    const a = await lb.send({ hold: true })
    assert.equal(a.status, 101, `tunnel ${i}`)
    held.push(a.client!)
  }
  assert.equal(sessions, 1, 'one HTTP/2 connection carries them all')
  assert.equal(stat(lb.front, 'cluster.up.upstream_rq_active'), 6)
  assert.equal(stat(lb.front, 'cluster.up.upstream_cx_overflow'), 0)
  assertOverflow(await lb.send())
  assert.equal(stat(lb.front, 'cluster.up.upstream_rq_pending_overflow'), 1, 'the seventh is over maxRequests')
  for (const c of held) assert.ok(await echoes(c, 'streams'))
  for (const c of held) c.socket.destroy()
})
