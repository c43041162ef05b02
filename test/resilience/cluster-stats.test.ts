/**
 * The cluster manager's stats under Envoy's names, moved by real traffic through the proxy, in
 * `app.switchyard.stats()` (`cluster.<name>.<stat>`) and in the Prometheus exposition
 * (`envoy_cluster_<stat>{envoy_cluster_name="<name>"}`, dots as underscores, gauges typed as gauges).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startDnsServer } from '../helpers/dns-server.ts'
import { startBackends, type Backend } from '../helpers/lb-backends.ts'
import { plainGet, startLbProxy } from '../helpers/lb-proxy.ts'

const gauges = ['membership_total', 'membership_healthy', 'membership_degraded', 'outlier_detection.ejections_active', 'upstream_rq_active', 'upstream_cx_active']
const counters = [
  'health_check.attempt', 'health_check.success', 'health_check.failure', 'health_check.network_failure',
  'outlier_detection.ejections_enforced_total', 'outlier_detection.ejections_enforced_consecutive_5xx',
  'upstream_cx_overflow', 'upstream_rq_pending_overflow', 'upstream_rq_retry_overflow', 'lb_healthy_panic'
]

test('every contract stat is in stats() and on Prometheus as envoy_cluster_* with the cluster name as a label', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 3)
  const [, flaky, down] = backends as [Backend, Backend, Backend]
  down.health = 'reset'
  const dns = await startDnsServer(t)
  const lb = await startLbProxy(t, 'new style', backends, {
    cluster: {
      healthCheck: { interval: 200, timeout: 200, unhealthyThreshold: 1, healthyThreshold: 1 },
      outlierDetection: { consecutive5xx: 1, interval: 10_000, baseEjectionTime: 60_000, maxEjectionPercent: 100 },
      circuitBreakers: { maxRequests: 3, maxConnections: 2, maxPendingRequests: 0, maxRetries: 0 }
    },
    upstream: { retries: { numRetries: 1, retryOn: ['5xx'] } },
    core: { clusters: { empty: { type: 'strictDns', endpoints: ['gone.test:80'], dnsResolvers: [dns.address] } } }
  })
  const stats = (): Record<string, number> => lb.front.switchyard.stats()
  const up = (name: string): number => stats()[`cluster.up.${name}`] ?? 0

  // One endpoint refuses plain requests with a 503: the route would retry it, the retry breaker (0) refuses.
  flaky.status = 503
  for (let i = 0; i < 6 && up('upstream_rq_retry_overflow') === 0; i++) await plainGet(lb.port)
  // That 503 ejected it; with the unhealthy one, one endpoint in three is left: panic.
  assert.equal(up('outlier_detection.ejections_active'), 1)
  // The plain requests' pooled connections count in upstream_cx_total, not in the tunnels' gauge.
  assert.equal(up('upstream_cx_active'), 0)
  assert.ok(up('upstream_cx_total') >= 1)
  flaky.status = 0
  const held = [(await lb.send({ hold: true })).client!, (await lb.send({ hold: true })).client!]
  // A third tunnel finds both connections taken and no room to wait.
  assert.equal((await lb.send()).status, 503)

  const snapshot = stats()
  const expected: Record<string, number> = {
    membership_total: 3,
    membership_healthy: 1,
    membership_degraded: 0,
    'outlier_detection.ejections_active': 1,
    upstream_rq_active: 2,
    upstream_cx_active: 2,
    'outlier_detection.ejections_enforced_total': 1,
    'outlier_detection.ejections_enforced_consecutive_5xx': 1,
    upstream_cx_overflow: 1,
    upstream_rq_retry_overflow: 1
  }
  for (const [name, value] of Object.entries(expected)) assert.equal(snapshot[`cluster.up.${name}`], value, name)
  for (const name of ['health_check.attempt', 'health_check.success', 'health_check.failure', 'health_check.network_failure', 'lb_healthy_panic', 'upstream_rq_pending_overflow']) {
    assert.ok((snapshot[`cluster.up.${name}`] ?? 0) >= 1, `${name} did not move`)
  }
  assert.equal(snapshot['cluster.empty.membership_total'], 0)

  // The empty cluster has nothing to send to.
  const none = lb.front.switchyard.clusters.get('empty')
  assert.deepEqual(none?.endpoints(), [])

  const text = lb.front.switchyard.prometheus()
  for (const name of [...gauges, ...counters]) {
    const metric = `envoy_cluster_${name.replace(/\./g, '_')}`
    assert.match(text, new RegExp(`^# TYPE ${metric} ${gauges.includes(name) ? 'gauge' : 'counter'}$`, 'm'), metric)
    const line = new RegExp(`^${metric}\\{envoy_cluster_name="up"\\} (\\d+)$`, 'm').exec(text)
    assert.ok(line !== null, `${metric}{envoy_cluster_name="up"} missing`)
    assert.equal(Number(line[1]), snapshot[`cluster.up.${name}`] ?? 0, metric)
  }
  assert.match(text, /^envoy_cluster_membership_total\{envoy_cluster_name="empty"\} 0$/m)
  for (const c of held) c.socket.destroy()
})

test('upstream_cx_none_healthy is counted per cluster and exported with its label', { timeout: 30_000 }, async (t) => {
  const dns = await startDnsServer(t)
  const backends = await startBackends(t, 1)
  const lb = await startLbProxy(t, 'plain', backends, {
    cluster: { type: 'strictDns', endpoints: ['gone.test:80'], dnsResolvers: [dns.address] }
  })
  await plainGet(lb.port)
  await plainGet(lb.port)
  assert.equal(lb.front.switchyard.stats()['cluster.up.upstream_cx_none_healthy'], 2)
  assert.match(lb.front.switchyard.prometheus(), /^# TYPE envoy_cluster_upstream_cx_none_healthy counter\nenvoy_cluster_upstream_cx_none_healthy\{envoy_cluster_name="up"\} 2$/m)
})
