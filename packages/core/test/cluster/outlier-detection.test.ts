import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Host } from '../../src/cluster/host.ts'
import { makeCluster, next } from './helpers.ts'

const endpoints = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}:9000`)

test('N consecutive 5xx eject an endpoint; a success in between starts the count again', async (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: endpoints(10), outlierDetection: { consecutive5xx: 3, interval: 50, baseEjectionTime: 100 } })
  const [host] = cluster.hosts() as [Host]
  cluster.recordOutcome(host, '5xx')
  cluster.recordOutcome(host, '5xx')
  cluster.recordOutcome(host, 'success')
  cluster.recordOutcome(host, '5xx')
  cluster.recordOutcome(host, '5xx')
  assert.equal(host.health, 'healthy')
  cluster.recordOutcome(host, '5xx')
  assert.equal(host.health, 'ejected')
  assert.equal(cluster.endpoints()[0]!.health, 'ejected')
  assert.equal(stat('outlier_detection.ejections_active'), 1)
  assert.equal(stat('outlier_detection.ejections_enforced_total'), 1)
  assert.equal(stat('outlier_detection.ejections_enforced_consecutive_5xx'), 1)
  for (let i = 0; i < 200; i++) assert.notEqual(cluster.chooseHost(), host, 'an ejected endpoint gets no new request')
})

test('an ejection lasts baseEjectionTime × times ejected, then the endpoint returns', async (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: endpoints(2), outlierDetection: { consecutive5xx: 2, interval: 50, baseEjectionTime: 100, maxEjectionPercent: 50 } })
  const [host] = cluster.hosts() as [Host]
  const eject = (): void => { cluster.recordOutcome(host, '5xx'); cluster.recordOutcome(host, '5xx') }

  const first = next<[Host, string, number]>(cluster, 'ejected')
  eject()
  assert.equal((await first)[2], 100)
  assert.equal(cluster.ejectionDuration(host), 100)
  await next(cluster, 'unejected')
  assert.equal(host.health, 'healthy')
  assert.equal(stat('outlier_detection.ejections_active'), 0)

  // Ejected again before a sweep finds it in service: twice as long, then three times.
  const second = next<[Host, string, number]>(cluster, 'ejected')
  eject()
  assert.equal((await second)[2], 200)
  await next(cluster, 'unejected')
  eject()
  assert.equal(cluster.ejectionDuration(host), 300)
  await next(cluster, 'unejected')
  assert.equal(stat('outlier_detection.ejections_enforced_total'), 3)
})

test('maxEjectionPercent caps ejections, but one endpoint may always be ejected', async (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: endpoints(4), healthyPanicThreshold: 0, outlierDetection: { consecutive5xx: 1, interval: 1000, baseEjectionTime: 10000, maxEjectionPercent: 10 } })
  const hosts = cluster.hosts()
  for (const host of hosts) cluster.recordOutcome(host, '5xx')
  // 10 % of 4 is 0.4 endpoints: one may still be ejected, no second.
  assert.deepEqual(hosts.map(h => h.health), ['ejected', 'healthy', 'healthy', 'healthy'])
  assert.equal(stat('outlier_detection.ejections_overflow'), 3)

  const { cluster: wide } = makeCluster(t, { endpoints: endpoints(4), outlierDetection: { consecutive5xx: 1, interval: 1000, baseEjectionTime: 10000, maxEjectionPercent: 50 } }, 'wide')
  for (const host of wide.hosts()) wide.recordOutcome(host, '5xx')
  assert.equal(wide.endpoints().filter(e => e.health === 'ejected').length, 2)
})

test('gateway failures eject only when consecutiveGatewayFailure is set; a connect failure counts as one', async (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: endpoints(3), outlierDetection: { consecutive5xx: 10, consecutiveLocalOriginFailure: 10, consecutiveGatewayFailure: 2, interval: 1000, baseEjectionTime: 10000, maxEjectionPercent: 100 } })
  const [a, b] = cluster.hosts() as [Host, Host]
  cluster.recordOutcome(a, 'gateway-failure')
  cluster.recordOutcome(a, '5xx') // a non-gateway 5xx breaks the run
  cluster.recordOutcome(a, 'gateway-failure')
  assert.equal(a.health, 'healthy')
  cluster.recordOutcome(a, 'gateway-failure')
  assert.equal(a.health, 'ejected')
  assert.equal(stat('outlier_detection.ejections_enforced_consecutive_gateway_failure'), 1)
  cluster.recordOutcome(b, 'local-origin-failure')
  cluster.recordOutcome(b, 'local-origin-failure')
  assert.equal(b.health, 'ejected', 'two connect failures are two gateway failures')

  const { cluster: plain } = makeCluster(t, { endpoints: endpoints(3), outlierDetection: { consecutive5xx: 10, interval: 1000, maxEjectionPercent: 100 } }, 'plain')
  const [c] = plain.hosts() as [Host]
  for (let i = 0; i < 9; i++) plain.recordOutcome(c, 'gateway-failure')
  assert.equal(c.health, 'healthy', 'without consecutiveGatewayFailure, gateway failures count as 5xx only')
})

test('consecutive local-origin failures eject; a connection that succeeds starts the count again', async (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: endpoints(3), outlierDetection: { consecutiveLocalOriginFailure: 3, interval: 1000, maxEjectionPercent: 100 } })
  const [a] = cluster.hosts() as [Host]
  cluster.recordOutcome(a, 'local-origin-failure')
  cluster.recordOutcome(a, 'local-origin-failure')
  cluster.recordOutcome(a, 'local-origin-success')
  cluster.recordOutcome(a, 'local-origin-failure')
  cluster.recordOutcome(a, 'local-origin-failure')
  assert.equal(a.health, 'healthy')
  cluster.recordOutcome(a, 'local-origin-failure')
  assert.equal(a.health, 'ejected')
  assert.equal(stat('outlier_detection.ejections_enforced_consecutive_local_origin_failure'), 1)
})

test('with most endpoints ejected the cluster panics and uses them all; with panic off it has no healthy upstream', async (t) => {
  const options = { endpoints: endpoints(2), outlierDetection: { consecutive5xx: 1, interval: 1000, baseEjectionTime: 10000, maxEjectionPercent: 100 } }
  const { cluster, stat } = makeCluster(t, options)
  const [a, b] = cluster.hosts() as [Host, Host]
  cluster.recordOutcome(a, '5xx')
  assert.equal(cluster.panic, false, '1 of 2 healthy: 50 % is not below 50')
  for (let i = 0; i < 20; i++) assert.equal(cluster.chooseHost(), b)
  cluster.recordOutcome(b, '5xx')
  assert.equal(cluster.panic, true)
  const seen = new Set<Host | undefined>()
  for (let i = 0; i < 20; i++) seen.add(cluster.chooseHost())
  assert.equal(seen.size, 2, 'in panic every endpoint is used')
  assert.equal(stat('lb_healthy_panic'), 20)

  const { cluster: strict, stat: strictStat } = makeCluster(t, { ...options, healthyPanicThreshold: 0 }, 'strict')
  for (const host of strict.hosts()) strict.recordOutcome(host, '5xx')
  assert.equal(strict.chooseHost(), undefined, 'no healthy upstream')
  assert.equal(strictStat('lb_healthy_panic'), 0)
})
