import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toPrometheus } from '../src/prometheus.ts'

test('scoped stats become labels and _active stats are gauges', () => {
  const text = toPrometheus({
    downstream_cx_upgrades_total: 3,
    downstream_cx_upgrades_active: 1,
    'upgrade.websocket.downstream_cx_upgrades_total': 2,
    'upgrade.foo.downstream_cx_upgrades_total': 1,
    'cluster.chat.upstream_cx_total': 3,
    'cluster.a"b.upstream_rq_retry': 1
  })
  assert.match(text, /^# TYPE switchyard_downstream_cx_upgrades_active gauge\nswitchyard_downstream_cx_upgrades_active 1$/m)
  assert.match(text, /^# TYPE switchyard_downstream_cx_upgrades_total counter\nswitchyard_downstream_cx_upgrades_total 3$/m)
  assert.match(text, /^switchyard_upgrade_downstream_cx_upgrades_total\{upgrade_type="foo"\} 1$/m)
  assert.match(text, /^switchyard_upgrade_downstream_cx_upgrades_total\{upgrade_type="websocket"\} 2$/m)
  assert.match(text, /^switchyard_cluster_upstream_cx_total\{cluster="chat"\} 3$/m)
  assert.match(text, /^switchyard_cluster_upstream_rq_retry\{cluster="a\\"b"\} 1$/m)
  assert.equal(text.match(/# TYPE switchyard_upgrade_downstream_cx_upgrades_total/g)?.length, 1, 'one TYPE line per family')
})
