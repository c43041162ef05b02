/**
 * Load-balancing policies through the proxy, each mode (plain request, new-style upgrade, legacy pipe,
 * H1→H2→H1): real requests land on real endpoints, counted where they arrive.
 *
 * Tolerances, stated once: round robin is deterministic (each endpoint within 1 pick of its weighted
 * share); random is binomial, so each share is checked within 5 standard deviations of its expectation
 * (a false failure about once in 1.7 million runs); ring hash and maglev over distinct keys are checked
 * within 12 points of an equal share (the ring's own imbalance at 1,024 points per endpoint is ~3 %, the
 * sampling's ~3 % at 300 keys; endpoint addresses, hence ring points, change with each run's ports).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startBackends, tally } from '../helpers/lb-backends.ts'
import { echoes, lbModes, sendMany, startLbProxy, tunnelModes, type Answer } from '../helpers/lb-proxy.ts'
import { freePort } from '../helpers/net.ts'

const served = (answers: Answer[]): Record<string, number> => tally(answers.map((a) => a.backend ?? '(none)'))
const okStatus = (mode: string): number => mode === 'plain' ? 200 : 101

for (const mode of lbModes) {
  test(`round robin spreads requests in exact proportion to weights 1:2:3 (${mode})`, { timeout: 60_000 }, async (t) => {
    const backends = await startBackends(t, 3)
    const lb = await startLbProxy(t, mode, backends, { weights: { b0: 1, b1: 2, b2: 3 } })
    const n = mode === 'plain' ? 360 : 240
    const answers = await sendMany(lb, n)
    for (const a of answers) assert.equal(a.status, okStatus(mode))
    const got = served(answers)
    for (const [name, weight] of [['b0', 1], ['b1', 2], ['b2', 3]] as const) {
      const expected = n * weight / 6
      assert.ok(Math.abs((got[name] ?? 0) - expected) <= 1, `${name}: ${got[name]} of ${n}, expected ${expected}`)
    }
    // Counted where they arrived, not only where the proxy says it sent them.
    assert.deepEqual(backends.map((b) => b.traffic), backends.map((b) => got[b.name] ?? 0))
  })

  test(`random honours weights 1:3 within 5 standard deviations (${mode})`, { timeout: 60_000 }, async (t) => {
    const backends = await startBackends(t, 2)
    const lb = await startLbProxy(t, mode, backends, { cluster: { lbPolicy: 'random' }, weights: { b0: 1, b1: 3 } })
    const n = mode === 'plain' ? 400 : 240
    const answers = await sendMany(lb, n)
    for (const a of answers) assert.equal(a.status, okStatus(mode))
    const got = served(answers)
    const sd = Math.sqrt(n * 0.25 * 0.75)
    assert.ok(Math.abs((got.b0 ?? 0) - n / 4) <= 5 * sd, `b0 got ${got.b0} of ${n}, expected ${n / 4} ± ${(5 * sd).toFixed(0)}`)
    assert.equal((got.b0 ?? 0) + (got.b1 ?? 0), n)
  })

  for (const lbPolicy of ['ringHash', 'maglev'] as const) {
    test(`${lbPolicy} spreads distinct x-user values near evenly and sends 100 requests of one user to one endpoint (${mode})`, { timeout: 60_000 }, async (t) => {
      const backends = await startBackends(t, 3)
      const lb = await startLbProxy(t, mode, backends, { cluster: { lbPolicy }, upstream: { hashPolicy: [{ header: 'x-user' }] } })
      const n = 300
      const spread = served(await sendMany(lb, n, (i) => ({ headers: { 'x-user': `user-${i}` } })))
      for (const b of backends) {
        const share = (spread[b.name] ?? 0) / n
        assert.ok(Math.abs(share - 1 / 3) <= 0.12, `${b.name} took ${(share * 100).toFixed(1)} % of ${n} distinct users`)
      }

      const before = backends.map((b) => b.traffic)
      const same = await sendMany(lb, 100, () => ({ headers: { 'x-user': 'alice' } }))
      for (const a of same) assert.equal(a.status, okStatus(mode))
      const landed = Object.keys(served(same))
      assert.equal(landed.length, 1, `alice's 100 requests landed on ${landed.join(', ')}`)
      const delta = backends.map((b, i) => b.traffic - before[i]!)
      assert.deepEqual(delta.filter((d) => d > 0), [100], 'counted at the one endpoint too')
    })
  }
}

for (const mode of tunnelModes) {
  test(`least request sends new tunnels away from the endpoint holding the most open ones (${mode})`, { timeout: 60_000 }, async (t) => {
    const backends = await startBackends(t, 3)
    const busy = backends[0]!
    // choiceCount 3 of 3 endpoints: the busy one is picked only when all three samples are it (1 in 27).
    const lb = await startLbProxy(t, mode, backends, { cluster: { lbPolicy: 'leastRequest', leastRequestLbConfig: { choiceCount: 3 } } })
    lb.cluster.setEndpoints([lb.endpointOf(busy)])
    const held = []
    for (let i = 0; i < 20; i++) held.push((await lb.send({ hold: true })).client!)
    assert.equal(busy.tunnels.size, 20)
    lb.cluster.setEndpoints(backends.map((b) => lb.endpointOf(b)))
    const more = []
    for (let i = 0; i < 30; i++) {
      const a = await lb.send({ hold: true })
      assert.equal(a.status, 101)
      more.push(a)
    }
    const got = tally(more.map((a) => a.backend!))
    // Round robin would give it 10; P(7 or more of 30 at 1/27) is below 1e-5.
    assert.ok((got.b0 ?? 0) <= 6, `the busy endpoint took ${got.b0} of 30 new tunnels`)
    // The idle two share the rest, as each open tunnel weighs on its endpoint. Three samples with replacement
    // and ties to the first sampled still let them drift: a difference over 12 has P ≈ 1e-5 (simulated).
    assert.ok(Math.abs((got.b1 ?? 0) - (got.b2 ?? 0)) <= 12, `b1 ${got.b1}, b2 ${got.b2}`)
    for (const a of [...more.slice(0, 3)]) assert.ok(await echoes(a.client!, 'still open'))
    for (const c of [...held, ...more.map((a) => a.client!)]) c.socket.destroy()
  })
}

for (const lbPolicy of ['ringHash', 'maglev'] as const) {
  test(`${lbPolicy}: removing one of four endpoints moves at most the users it held plus 5 % of all`, { timeout: 60_000 }, async (t) => {
    const backends = await startBackends(t, 4)
    const lb = await startLbProxy(t, 'plain', backends, { cluster: { lbPolicy }, upstream: { hashPolicy: [{ header: 'x-user' }] } })
    const users = Array.from({ length: 400 }, (_, i) => `user-${i}`)
    const first = await sendMany(lb, users.length, (i) => ({ headers: { 'x-user': users[i]! } }))
    lb.cluster.setEndpoints(backends.slice(0, 3).map((b) => lb.endpointOf(b)))
    const second = await sendMany(lb, users.length, (i) => ({ headers: { 'x-user': users[i]! } }))
    let moved = 0
    let itsOwn = 0
    for (let i = 0; i < users.length; i++) {
      assert.notEqual(second[i]!.backend, 'b3', 'the removed endpoint takes no new request')
      if (first[i]!.backend === 'b3') itsOwn++
      if (first[i]!.backend !== second[i]!.backend) moved++
    }
    assert.ok(itsOwn > 0)
    assert.ok(moved <= itsOwn + 0.05 * users.length, `${moved} of ${users.length} users moved; the removed endpoint held ${itsOwn}`)
  })
}

for (const mode of ['plain', 'new style', 'H1→H2→H1'] as const) {
  test(`a retry after a connect failure picks another endpoint, even for a user hashed to the dead one (${mode})`, { timeout: 30_000 }, async (t) => {
    const backends = await startBackends(t, 3)
    const lb = await startLbProxy(t, mode, backends, {
      cluster: { lbPolicy: 'ringHash' },
      upstream: { hashPolicy: [{ header: 'x-user' }], retries: { numRetries: 1, retryOn: ['connect-failure'] } }
    })
    const dead = `127.0.0.1:${await freePort()}`
    lb.cluster.setEndpoints([...backends.map((b) => lb.endpointOf(b)), dead])
    // One at a time: concurrent retries would meet the retry breaker (3 by default), which is another test.
    const answers = await sendMany(lb, 60, (i) => ({ headers: { 'x-user': `user-${i}` } }), 1)
    for (const a of answers) assert.equal(a.status, okStatus(mode), `every request served, by its first try or its retry: ${a.body}`)
    const retried = lb.front.switchyard.stats()['cluster.up.upstream_rq_retry'] ?? 0
    assert.ok(retried > 0, 'some users were hashed to the dead endpoint')
    assert.equal(lb.front.switchyard.stats()['cluster.up.upstream_rq_retry_success'], retried)
  })
}
