/**
 * Outlier detection fed by real traffic through the proxy, each mode: consecutive 5xx answers (an
 * upgrade refused with a 5xx counts like any request) and connect failures eject an endpoint for
 * `baseEjectionTime × times ejected`; never more than `maxEjectionPercent` of the endpoints are out
 * (one always may be); below `healthyPanicThreshold` every endpoint is used again, as Envoy does.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { Host } from '@switchyard/core/internal'
import { startBackends, tally, type Backend } from '../helpers/lb-backends.ts'
import { lbModes, sendMany, startLbProxy, type LbProxy } from '../helpers/lb-proxy.ts'
import { freePort } from '../helpers/net.ts'
import { stat } from '../helpers/start-proxy.ts'

const okStatus = (mode: string): number => mode === 'plain' ? 200 : 101

/** Sends one request at a time until `host` is ejected; resolves with the ejection's reason and duration. */
async function untilEjected (lb: LbProxy, address: string, limit = 20): Promise<{ reason: string, duration: number }> {
  let ejection: { reason: string, duration: number } | undefined
  const onEjected = (host: Host, reason: string, duration: number): void => {
    if (host.address === address) ejection = { reason, duration }
  }
  lb.cluster.on('ejected', onEjected)
  try {
    for (let i = 0; i < limit && ejection === undefined; i++) await lb.send()
  } finally {
    lb.cluster.off('ejected', onEjected)
  }
  assert.ok(ejection !== undefined, `${address} was not ejected after ${limit} requests`)
  return ejection
}

function healthOf (lb: LbProxy, address: string): string | undefined {
  return lb.cluster.endpoints().find((e) => e.address === address)?.health
}

for (const mode of lbModes) {
  test(`consecutive 5xx answers eject an endpoint for baseEjectionTime, twice as long the second time (${mode})`, { timeout: 30_000 }, async (t) => {
    const backends = await startBackends(t, 2)
    const [, bad] = backends as [Backend, Backend]
    bad.status = mode === 'plain' ? 500 : 503
    // A sweep every 400 ms returns an ejected endpoint once its time is up; the next sweep would start
    // forgetting its ejections, so the second bout of errors is sent as soon as it is back.
    const lb = await startLbProxy(t, mode, backends, {
      cluster: { outlierDetection: { consecutive5xx: 2, interval: 400, baseEjectionTime: 100, maxEjectionPercent: 50 } }
    })
    const address = lb.endpointOf(bad)
    const first = await untilEjected(lb, address)
    assert.deepEqual(first, { reason: 'consecutive_5xx', duration: 100 })
    assert.equal(healthOf(lb, address), 'ejected')
    assert.equal(stat(lb.front, 'cluster.up.outlier_detection.ejections_active'), 1)

    // Every request answered before the endpoint came back was sent to the other one.
    let back = false
    const unejected = once(lb.cluster, 'unejected').then(([host]) => { back = true; return host as Host })
    let during = 0
    while (!back) {
      const a = await lb.send()
      if (back) break
      assert.equal(a.backend, 'b0', 'an ejected endpoint gets no new request')
      assert.equal(a.status, okStatus(mode))
      during++
    }
    assert.ok(during > 0)
    assert.equal((await unejected).address, address)
    assert.equal(healthOf(lb, address), 'healthy')
    const second = await untilEjected(lb, address)
    assert.deepEqual(second, { reason: 'consecutive_5xx', duration: 200 }, 'baseEjectionTime × times ejected')
    assert.equal(stat(lb.front, 'cluster.up.outlier_detection.ejections_enforced_total'), 2)
    assert.equal(stat(lb.front, 'cluster.up.outlier_detection.ejections_enforced_consecutive_5xx'), 2)
  })

  test(`connect failures eject an endpoint as local-origin failures (${mode})`, { timeout: 30_000 }, async (t) => {
    const backends = await startBackends(t, 1)
    const lb = await startLbProxy(t, mode, backends, {
      cluster: { connectTimeout: 2000, outlierDetection: { consecutiveLocalOriginFailure: 2, interval: 10_000, baseEjectionTime: 60_000, maxEjectionPercent: 50 } }
    })
    const dead = `127.0.0.1:${await freePort()}`
    lb.cluster.setEndpoints([lb.endpointOf(backends[0]!), dead])
    const answers: number[] = []
    let ejection: { reason: string, duration: number } | undefined
    lb.cluster.once('ejected', (_host: Host, reason: string, duration: number) => { ejection = { reason, duration } })
    for (let i = 0; i < 20 && ejection === undefined; i++) answers.push((await lb.send()).status)
    assert.deepEqual(ejection, { reason: 'consecutive_local_origin_failure', duration: 60_000 })
    // Each attempt on the dead endpoint was answered by the proxy (503; the legacy pipe's 504).
    assert.deepEqual([...new Set(answers.filter((s) => s !== okStatus(mode)))], [mode === 'legacy' ? 504 : 503])
    assert.equal(stat(lb.front, 'cluster.up.outlier_detection.ejections_enforced_consecutive_local_origin_failure'), 1)
    const after = await sendMany(lb, 10)
    for (const a of after) assert.equal(a.status, okStatus(mode))
  })
}

test('no more than maxEjectionPercent of the endpoints are ejected at once, and one always may be', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 4)
  for (const b of backends) b.status = 500
  const lb = await startLbProxy(t, 'plain', backends, {
    cluster: { outlierDetection: { consecutive5xx: 1, interval: 10_000, baseEjectionTime: 60_000, maxEjectionPercent: 50 }, healthyPanicThreshold: 0 }
  })
  await sendMany(lb, 12, () => ({}), 1)
  assert.equal(stat(lb.front, 'cluster.up.outlier_detection.ejections_active'), 2)
  assert.equal(lb.cluster.endpoints().filter((e) => e.health === 'ejected').length, 2)
  assert.ok(stat(lb.front, 'cluster.up.outlier_detection.ejections_overflow') >= 1, 'the refused ejections are counted')

  const two = await startBackends(t, 2)
  for (const b of two) b.status = 500
  // 10 % of two endpoints rounds down to none; Envoy still lets one go.
  const small = await startLbProxy(t, 'plain', two, {
    cluster: { outlierDetection: { consecutive5xx: 1, interval: 10_000, baseEjectionTime: 60_000, maxEjectionPercent: 10 } }
  })
  await sendMany(small, 6, () => ({}), 1)
  assert.equal(small.cluster.endpoints().filter((e) => e.health === 'ejected').length, 1)
})

for (const mode of ['plain', 'new style'] as const) {
  test(`below healthyPanicThreshold every endpoint takes traffic again, ejected or not; with 0 the healthy one takes it all (${mode})`, { timeout: 30_000 }, async (t) => {
    for (const threshold of [50, 0]) {
      const backends = await startBackends(t, 3)
      backends[1]!.status = 500
      backends[2]!.status = 500
      const lb = await startLbProxy(t, mode, backends, {
        cluster: { outlierDetection: { consecutive5xx: 1, interval: 10_000, baseEjectionTime: 60_000, maxEjectionPercent: 100 }, healthyPanicThreshold: threshold }
      })
      for (let i = 0; i < 20 && lb.cluster.endpoints().filter((e) => e.health === 'ejected').length < 2; i++) await lb.send()
      assert.deepEqual(lb.cluster.endpoints().map((e) => e.health), ['healthy', 'ejected', 'ejected'])
      const panicBefore = stat(lb.front, 'cluster.up.lb_healthy_panic')
      const answers = await sendMany(lb, 30)
      const got = tally(answers.map((a) => a.backend!))
      if (threshold === 50) {
        // One healthy endpoint in three is below 50 %: Envoy's panic routing uses all three.
        assert.deepEqual(got, { b0: 10, b1: 10, b2: 10 })
        assert.equal(stat(lb.front, 'cluster.up.lb_healthy_panic') - panicBefore, 30)
      } else {
        assert.deepEqual(got, { b0: 30 })
        assert.equal(stat(lb.front, 'cluster.up.lb_healthy_panic'), 0)
      }
    }
  })
}
