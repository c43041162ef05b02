import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toPrometheus } from '../src/prometheus.ts'
import { Stats } from '../src/stats.ts'

test('scoped stats become labels and gauges are declared, not guessed', () => {
  const stats = new Stats()
  stats.inc('downstream_cx_upgrades_total', 3)
  stats.inc('downstream_cx_upgrades_active', 1)
  stats.upgrade('websocket', 'downstream_cx_upgrades_total', 2)
  stats.upgrade('foo', 'downstream_cx_upgrades_total', 1)
  stats.cluster('chat', 'upstream_cx_total', 3)
  stats.cluster('chat', 'upstream_rq_active', 2)
  stats.cluster('a"b', 'upstream_rq_retry', 1)
  const text = toPrometheus(stats.records())
  assert.match(text, /^# TYPE switchyard_downstream_cx_upgrades_active gauge\nswitchyard_downstream_cx_upgrades_active 1$/m)
  assert.match(text, /^# TYPE switchyard_downstream_cx_upgrades_total counter\nswitchyard_downstream_cx_upgrades_total 3$/m)
  assert.match(text, /^switchyard_upgrade_downstream_cx_upgrades_total\{upgrade_type="foo"\} 1$/m)
  assert.match(text, /^switchyard_upgrade_downstream_cx_upgrades_total\{upgrade_type="websocket"\} 2$/m)
  assert.match(text, /^# TYPE envoy_cluster_upstream_cx_total counter\nenvoy_cluster_upstream_cx_total\{envoy_cluster_name="chat"\} 3$/m)
  assert.match(text, /^# TYPE envoy_cluster_upstream_rq_active gauge\n/m)
  assert.match(text, /^envoy_cluster_upstream_rq_retry\{envoy_cluster_name="a\\"b"\} 1$/m)
  assert.equal(text.match(/# TYPE switchyard_upgrade_downstream_cx_upgrades_total/g)?.length, 1, 'one TYPE line per family')
})

test('a cluster name with dots is one label value, and a dotted stat name one metric', () => {
  const stats = new Stats()
  stats.cluster('chat.v2', 'upstream_cx_total', 4)
  stats.cluster('chat.v2', 'health_check.attempt', 2)
  stats.cluster('chat.v2', 'outlier_detection.ejections_active', 1)
  assert.equal(stats.snapshot()['cluster.chat.v2.upstream_cx_total'], 4)
  const text = toPrometheus(stats.records())
  assert.match(text, /^envoy_cluster_upstream_cx_total\{envoy_cluster_name="chat\.v2"\} 4$/m)
  assert.match(text, /^envoy_cluster_health_check_attempt\{envoy_cluster_name="chat\.v2"\} 2$/m)
  assert.match(text, /^# TYPE envoy_cluster_outlier_detection_ejections_active gauge$/m)
  assert.doesNotMatch(text, /v2_upstream/)
})
