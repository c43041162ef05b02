import { test } from 'node:test'
import assert from 'node:assert/strict'
import { makeCluster } from './helpers.ts'
import { clusterGauges } from '../../src/cluster/cluster-stats.ts'

test('every cluster has Envoy\'s default breakers, 1024/1024/1024/3, without setting any', (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: ['127.0.0.1:1'] })
  assert.deepEqual({ ...cluster.breakers.limits }, { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 })
  for (let i = 0; i < 1024; i++) assert.ok(cluster.breakers.tryRequest())
  assert.equal(cluster.breakers.tryRequest(), false)
  assert.equal(stat('upstream_rq_pending_overflow'), 1)
  assert.equal(stat('circuit_breakers.default.rq_open'), 1)
  for (let i = 0; i < 3; i++) assert.ok(cluster.breakers.tryRetry())
  assert.equal(cluster.breakers.tryRetry(), false)
  assert.equal(stat('upstream_rq_retry_overflow'), 1)
})

test('each breaker refuses past its limit, counts each overflow, and takes a slot again once one is released', (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: ['127.0.0.1:1'], circuitBreakers: { maxConnections: 2, maxPendingRequests: 1, maxRequests: 3, maxRetries: 0 } })
  const b = cluster.breakers
  assert.ok(b.tryConnection())
  assert.ok(b.tryConnection())
  assert.equal(b.tryConnection(), false)
  assert.equal(b.tryConnection(), false)
  assert.equal(stat('upstream_cx_overflow'), 2)
  assert.equal(stat('circuit_breakers.default.cx_open'), 1)
  b.releaseConnection()
  assert.equal(stat('circuit_breakers.default.cx_open'), 0)
  assert.ok(b.tryConnection())

  assert.ok(b.tryPendingRequest())
  assert.equal(stat('upstream_rq_pending_active'), 1)
  assert.equal(b.tryPendingRequest(), false)
  b.releasePendingRequest()
  assert.equal(stat('upstream_rq_pending_active'), 0)
  assert.ok(b.tryPendingRequest())

  for (let i = 0; i < 3; i++) assert.ok(b.tryRequest())
  assert.equal(b.tryRequest(), false)
  assert.equal(stat('upstream_rq_pending_overflow'), 2, 'a pending and a request overflow, Envoy\'s one stat for both')
  assert.equal(b.tryRetry(), false, 'maxRetries 0: no retry at all')
  assert.equal(stat('upstream_rq_retry_overflow'), 1)

  for (let i = 0; i < 5; i++) b.releaseRequest()
  assert.equal(b.requests, 0, 'a release without a slot never goes below zero')
  assert.equal(stat('circuit_breakers.default.rq_open'), 0)
})

test('a flood of 10,000 tries against maxRequests 100 holds exactly 100 and counts 9,900 overflows', (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: ['127.0.0.1:1'], circuitBreakers: { maxRequests: 100 } })
  let admitted = 0
  for (let i = 0; i < 10000; i++) if (cluster.breakers.tryRequest()) admitted++
  assert.equal(admitted, 100)
  assert.equal(stat('upstream_rq_pending_overflow'), 9900)
})

test('the gauges a cluster keeps are reported from the start, as gauges', (t) => {
  const { stats } = makeCluster(t, { endpoints: ['127.0.0.1:1'] })
  assert.equal(new Set(clusterGauges).size, clusterGauges.length)
  const kinds = new Map(stats.records().filter(r => r.cluster === 'c').map(r => [r.name, r.kind]))
  for (const gauge of clusterGauges) assert.equal(kinds.get(gauge), 'gauge', gauge)
})
