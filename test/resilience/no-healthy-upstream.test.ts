/**
 * No endpoint to send to — none resolved, or all unhealthy or ejected while panic is off — is Envoy's
 * local reply: 503 `no healthy upstream`, response flag UH, stat `upstream_cx_none_healthy`; each mode.
 * With the default panic threshold an all-unhealthy cluster is in panic and still used.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createAccessLogFilter, type AccessLogLine } from '@switchyard/filters'
import { startDnsServer } from '../helpers/dns-server.ts'
import { startBackends, tally } from '../helpers/lb-backends.ts'
import { lbModes, sendMany, startLbProxy } from '../helpers/lb-proxy.ts'
import { stat } from '../helpers/start-proxy.ts'

const healthCheck = { interval: 200, timeout: 200, unhealthyThreshold: 1, healthyThreshold: 1 }

for (const mode of lbModes) {
  test(`every endpoint unhealthy with healthyPanicThreshold 0: 503 no healthy upstream, flag UH, counted (${mode})`, { timeout: 30_000 }, async (t) => {
    const backends = await startBackends(t, 2)
    for (const b of backends) b.health = 'fail'
    const lines: AccessLogLine[] = []
    const lb = await startLbProxy(t, mode, backends, {
      cluster: { healthCheck, healthyPanicThreshold: 0 },
      core: { filters: [createAccessLogFilter({ logger: { info: (line) => lines.push(line as AccessLogLine) } })] }
    })
    assert.deepEqual(lb.cluster.endpoints().map((e) => e.health), ['unhealthy', 'unhealthy'])
    const answers = await sendMany(lb, 3, () => ({}), 1)
    for (const a of answers) {
      assert.equal(a.status, 503)
      assert.equal(a.body, 'no healthy upstream')
      assert.equal(a.headers['content-type'], 'text/plain')
      assert.equal(a.headers['x-envoy-overloaded'], undefined)
    }
    assert.equal(stat(lb.front, 'cluster.up.upstream_cx_none_healthy'), 3)
    assert.equal(backends[0]!.traffic + backends[1]!.traffic, 0)
    // Legacy routes run no filter (Envoy's use_websocket was a TCP proxy): no access-log line there.
    if (mode !== 'legacy') {
      assert.deepEqual(lines.map((l) => [l.status, l.responseFlags]), [[503, 'UH'], [503, 'UH'], [503, 'UH']])
    }
  })
}

test('with the default panic threshold an all-unhealthy cluster is in panic and every endpoint is used', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 2)
  for (const b of backends) b.health = 'fail'
  const lb = await startLbProxy(t, 'new style', backends, { cluster: { healthCheck } })
  assert.deepEqual(lb.cluster.endpoints().map((e) => e.health), ['unhealthy', 'unhealthy'])
  const answers = await sendMany(lb, 10)
  assert.deepEqual(tally(answers.map((a) => a.backend!)), { b0: 5, b1: 5 })
  assert.equal(stat(lb.front, 'cluster.up.lb_healthy_panic'), 10)
  assert.equal(stat(lb.front, 'cluster.up.upstream_cx_none_healthy'), 0)
})

test('every endpoint ejected with healthyPanicThreshold 0: 503 no healthy upstream', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 2)
  for (const b of backends) b.status = 500
  const lb = await startLbProxy(t, 'plain', backends, {
    cluster: { outlierDetection: { consecutive5xx: 1, interval: 10_000, baseEjectionTime: 60_000, maxEjectionPercent: 100 }, healthyPanicThreshold: 0 }
  })
  for (let i = 0; i < 10 && lb.cluster.endpoints().some((e) => e.health !== 'ejected'); i++) assert.equal((await lb.send()).status, 500)
  const a = await lb.send()
  assert.deepEqual([a.status, a.body], [503, 'no healthy upstream'])
  assert.equal(stat(lb.front, 'cluster.up.upstream_cx_none_healthy'), 1)
})

test('a strictDns cluster whose name resolves to nothing answers 503 no healthy upstream, upgrades and requests alike', { timeout: 30_000 }, async (t) => {
  const dns = await startDnsServer(t)
  const backends = await startBackends(t, 1)
  for (const mode of ['plain', 'new style'] as const) {
    const lb = await startLbProxy(t, mode, backends, {
      cluster: { type: 'strictDns', endpoints: ['gone.test:9'], dnsResolvers: [dns.address], dnsRefreshRate: 1000 }
    })
    assert.deepEqual(lb.cluster.endpoints(), [])
    const a = await lb.send()
    assert.deepEqual([a.status, a.body], [503, 'no healthy upstream'])
    assert.equal(stat(lb.front, 'cluster.up.upstream_cx_none_healthy'), 1)
  }
})
