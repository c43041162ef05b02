import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { Cluster } from '../../src/cluster/cluster.ts'
import type { Host } from '../../src/cluster/host.ts'
import { compileHashPolicy } from '../../src/cluster/hash-policy.ts'
import { Stats } from '../../src/stats.ts'
import type { ClusterOptions } from '../../src/plugin-options.ts'
import { backToBaseline, handles, listen, makeCluster, next } from './helpers.ts'

const quiet = { info () {}, warn () {} }

/** A connected loopback socket pair; the proxy end is what the router would register on a host. */
async function tunnel (t: TestContext): Promise<{ proxyEnd: net.Socket, farEnd: net.Socket }> {
  const server = net.createServer()
  const port = await listen(server)
  const proxyEnd = net.connect(port, '127.0.0.1')
  const [farEnd] = await once(server, 'connection') as [net.Socket]
  server.close()
  await once(proxyEnd, 'connect')
  for (const s of [proxyEnd, farEnd]) s.on('error', () => {})
  t.after(() => { proxyEnd.destroy(); farEnd.destroy() })
  return { proxyEnd, farEnd }
}

/** Registers `socket` on `host` as the router will: removed from the set when it closes. */
function register (host: Host, socket: net.Socket): { error?: Error } {
  const seen: { error?: Error } = {}
  const stream = { destroy: (error?: Error) => { seen.error = error; socket.destroy() } }
  host.streams.add(stream)
  socket.once('close', () => host.streams.delete(stream))
  return seen
}

const invalid: Array<[string, Partial<ClusterOptions> & Record<string, unknown>, string]> = [
  ['a health-check interval shorter than its timeout', { healthCheck: { interval: 100, timeout: 200 } }, 'healthCheck.interval'],
  ['an unhealthy threshold of 0', { healthCheck: { unhealthyThreshold: 0 } }, 'healthCheck.unhealthyThreshold'],
  ['a healthy threshold of 0', { healthCheck: { healthyThreshold: 0 } }, 'healthCheck.healthyThreshold'],
  ['a path on a tcp check', { healthCheck: { tcp: true, path: '/x' } }, 'healthCheck.path'],
  ['an empty status range', { healthCheck: { expectedStatuses: [[299, 200]] } }, 'healthCheck.expectedStatuses[0]'],
  ['an endpoint weight of 0', { endpoints: [{ address: '127.0.0.1:1', weight: 0 }] }, 'endpoints[0].weight'],
  ['an endpoint weight over 128', { endpoints: ['127.0.0.1:2', { address: '127.0.0.1:1', weight: 129 }] }, 'endpoints[1].weight'],
  ['an endpoint that does not parse', { endpoints: ['127.0.0.1:1', 'ftp://x:1'] }, 'endpoints[1]'],
  ['a consecutive5xx of 0', { outlierDetection: { consecutive5xx: 0 } }, 'outlierDetection.consecutive5xx'],
  ['a panic threshold over 100', { healthyPanicThreshold: 101 }, 'healthyPanicThreshold'],
  ['a minimum ring larger than the maximum', { lbPolicy: 'ringHash', ringHashLbConfig: { minimumRingSize: 2048, maximumRingSize: 1024 } }, 'ringHashLbConfig.minimumRingSize'],
  ['a maglev table size that is not prime', { lbPolicy: 'maglev', maglevLbConfig: { tableSize: 65536 } }, 'maglevLbConfig.tableSize'],
  ['ring options on a round-robin cluster', { ringHashLbConfig: { minimumRingSize: 16 } }, 'ringHashLbConfig'],
  ['a choice count of 1', { lbPolicy: 'leastRequest', leastRequestLbConfig: { choiceCount: 1 } }, 'leastRequestLbConfig.choiceCount'],
  ['a DNS resolver that is not an address', { type: 'strictDns', dnsResolvers: ['127.0.0.1:53', 'dns.example'] }, 'dnsResolvers[1]'],
  ['a DNS refresh rate on a static cluster', { dnsRefreshRate: 100 }, 'dnsRefreshRate'],
  ['an unknown lbPolicy', { lbPolicy: 'leastConn' as 'random' }, 'lbPolicy'],
  ['an unknown field', { healthChecks: {} }, 'healthChecks'],
  ['a negative drainTimeout', { drainTimeout: -1 }, 'drainTimeout']
]

for (const [what, options, field] of invalid) {
  test(`refuses ${what} with SWY_ERR_CLUSTER_OPTIONS naming the cluster and ${field}`, () => {
    assert.throws(() => new Cluster('chat', { endpoints: ['127.0.0.1:1'], ...options } as ClusterOptions, { stats: new Stats(), log: quiet }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SWY_ERR_CLUSTER_OPTIONS', err.message)
      assert.ok(err.message.includes('"chat"'), err.message)
      assert.ok(err.message.includes(field), `"${err.message}" does not name ${field}`)
      return true
    })
  })
}

test('setEndpoints validates like the options: a bad entry throws a coded error and changes nothing', (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: ['10.0.0.1:80', { address: '10.0.0.2:80', weight: 3 }] })
  const before = cluster.endpoints()
  for (const [bad, field] of [
    [['10.0.0.3:80', { address: '10.0.0.4:80', weight: 0 }], 'endpoints[1].weight'],
    [['10.0.0.3:80', { address: '10.0.0.4:80', weight: 129 }], 'endpoints[1].weight'],
    [['10.0.0.3:80', 'http://10.0.0.4/path'], 'endpoints[1]'],
    [['10.0.0.3:80', { address: '10.0.0.4:80', colour: 'red' }], 'endpoints[1].colour'],
    [[42], 'endpoints[0]'],
    [[], 'endpoints'],
    ['not a list', 'endpoints']
  ] as const) {
    assert.throws(() => cluster.setEndpoints(bad as unknown as string[]), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SWY_ERR_CLUSTER_OPTIONS')
      // The field named is the entry's own (a weight of 0 once read "endpoints[1]: must be string").
      assert.ok(err.message.includes(`${field}:`), `"${err.message}" does not name ${field}`)
      return true
    }, JSON.stringify(bad))
    assert.deepEqual(cluster.endpoints(), before)
  }
  assert.equal(stat('membership_change'), 0)
  assert.equal(stat('membership_total'), 2)
})

test('setEndpoints adds, removes and reweighs endpoints; one address listed twice is one endpoint with both shares', (t) => {
  const { cluster, stat } = makeCluster(t, { endpoints: ['10.0.0.1:80', '10.0.0.2:80'] })
  const kept = cluster.hosts()[0]
  cluster.setEndpoints([{ address: '10.0.0.1:80', weight: 2 }, '10.0.0.3:80', 'http://10.0.0.3:80'])
  assert.deepEqual(cluster.endpoints(), [
    { address: '10.0.0.1:80', weight: 2, health: 'healthy' },
    { address: '10.0.0.3:80', weight: 2, health: 'healthy' }
  ])
  assert.equal(cluster.hosts()[0], kept, 'a kept endpoint keeps its host (and its counters)')
  assert.equal(stat('membership_total'), 2)
  assert.equal(stat('membership_change'), 1)
  const counts = new Map<string, number>()
  for (let i = 0; i < 400; i++) {
    const a = cluster.chooseHost()!.address
    counts.set(a, (counts.get(a) ?? 0) + 1)
  }
  assert.deepEqual([...counts.entries()].sort(), [['10.0.0.1:80', 200], ['10.0.0.3:80', 200]])
})

test('a removed endpoint takes no new request and keeps its open streams (Envoy\'s default)', async (t) => {
  const { cluster } = makeCluster(t, { endpoints: ['10.0.0.1:80', '10.0.0.2:80'] })
  const [gone] = cluster.hosts() as [Host]
  const { proxyEnd, farEnd } = await tunnel(t)
  register(gone, proxyEnd)
  cluster.setEndpoints(['10.0.0.2:80'])
  assert.equal(gone.removed, true)
  for (let i = 0; i < 20; i++) assert.notEqual(cluster.chooseHost(), gone)
  // The stream still carries bytes both ways.
  proxyEnd.write('ping')
  const [data] = await once(farEnd, 'data') as [Buffer]
  assert.equal(data.toString(), 'ping')
  assert.equal(proxyEnd.destroyed, false)
})

test('with drainTimeout, a removed endpoint\'s streams are closed once it passes, with SWY_ERR_UPSTREAM_HOST_REMOVED', async (t) => {
  const { cluster } = makeCluster(t, { endpoints: ['10.0.0.1:80', '10.0.0.2:80'], drainTimeout: 100 })
  const [gone] = cluster.hosts() as [Host]
  const { proxyEnd, farEnd } = await tunnel(t)
  const seen = register(gone, proxyEnd)
  cluster.setEndpoints(['10.0.0.2:80'])
  assert.equal(proxyEnd.destroyed, false, 'not at once')
  await Promise.all([once(farEnd, 'close'), once(proxyEnd, 'close')])
  assert.equal((seen.error as Error & { code?: string }).code, 'SWY_ERR_UPSTREAM_HOST_REMOVED')
  assert.equal(gone.streams.size, 0)
})

test('an endpoint re-added while it drains is the same host again and its drain is called off', async (t) => {
  const { cluster } = makeCluster(t, { endpoints: ['10.0.0.1:80', '10.0.0.2:80'], drainTimeout: 100 })
  const [host] = cluster.hosts() as [Host]
  const { proxyEnd } = await tunnel(t)
  register(host, proxyEnd)
  cluster.setEndpoints(['10.0.0.2:80'])
  cluster.setEndpoints(['10.0.0.1:80', '10.0.0.2:80'])
  assert.equal(cluster.hosts().find(h => h.address === '10.0.0.1:80'), host)
  assert.equal(host.removed, false)
  // Its would-be drain timer is gone: closing the cluster leaves the stream alone.
  cluster.close()
  assert.equal(proxyEnd.destroyed, false)
})

test('closeConnectionsOnHostHealthFailure closes an ejected endpoint\'s streams; without it they stay', async (t) => {
  const od = { consecutive5xx: 1, interval: 1000, baseEjectionTime: 10000, maxEjectionPercent: 50 }
  const { cluster } = makeCluster(t, { endpoints: ['10.0.0.1:80', '10.0.0.2:80'], outlierDetection: od, closeConnectionsOnHostHealthFailure: true })
  const [host] = cluster.hosts() as [Host]
  const a = await tunnel(t)
  const seen = register(host, a.proxyEnd)
  cluster.recordOutcome(host, '5xx')
  await once(a.farEnd, 'close')
  assert.equal((seen.error as Error & { code?: string }).code, 'SWY_ERR_UPSTREAM_HOST_UNHEALTHY')

  const { cluster: keep } = makeCluster(t, { endpoints: ['10.0.0.1:80', '10.0.0.2:80'], outlierDetection: od }, 'keep')
  const [kept] = keep.hosts() as [Host]
  const b = await tunnel(t)
  register(kept, b.proxyEnd)
  keep.recordOutcome(kept, '5xx')
  assert.equal(kept.health, 'ejected')
  b.proxyEnd.write('still here')
  const [data] = await once(b.farEnd, 'data') as [Buffer]
  assert.equal(data.toString(), 'still here')
})

test('closeConnectionsOnHostHealthFailure closes the streams of an endpoint that fails its health checks', async (t) => {
  let status = 200
  const server = http.createServer((_req, res) => { res.writeHead(status).end() })
  const port = await listen(server, t)
  const { cluster } = makeCluster(t, {
    endpoints: [`127.0.0.1:${port}`],
    healthCheck: { interval: 200, timeout: 200, unhealthyThreshold: 2, healthyThreshold: 1 },
    closeConnectionsOnHostHealthFailure: true
  })
  await cluster.ready()
  const [host] = cluster.hosts() as [Host]
  const { proxyEnd, farEnd } = await tunnel(t)
  const seen = register(host, proxyEnd)
  status = 503
  await once(farEnd, 'close')
  assert.equal(host.health, 'unhealthy')
  assert.match(seen.error?.message ?? '', /turned unhealthy/)
})

test('a retry avoids the hosts it already tried', (t) => {
  for (const lbPolicy of ['roundRobin', 'leastRequest', 'random', 'ringHash', 'maglev'] as const) {
    const { cluster } = makeCluster(t, { endpoints: ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'], lbPolicy }, lbPolicy)
    let avoided = 0
    for (let i = 0; i < 100; i++) {
      const first = cluster.chooseHost({ hash: i * 7919 })!
      if (cluster.chooseHost({ hash: i * 7919, previous: [first] }) !== first) avoided++
    }
    assert.ok(avoided >= 95, `${lbPolicy}: a retry avoided the first host ${avoided} times of 100`)
  }
})

test('100 requests with the same x-user all reach one endpoint of a ring-hash cluster, and different users spread', (t) => {
  for (const lbPolicy of ['ringHash', 'maglev'] as const) {
    const { cluster } = makeCluster(t, { endpoints: ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80'], lbPolicy }, lbPolicy)
    const hashOf = compileHashPolicy([{ header: 'x-user' }])
    const chosen = new Set<Host | undefined>()
    for (let i = 0; i < 100; i++) chosen.add(cluster.chooseHost(hashOf({ headers: { 'x-user': 'ada' }, url: '/chat' })))
    assert.equal(chosen.size, 1)
    const users = new Set<Host | undefined>()
    for (let i = 0; i < 100; i++) users.add(cluster.chooseHost(hashOf({ headers: { 'x-user': `user-${i}` }, url: '/chat' })))
    assert.equal(users.size, 4)
    // A 64-bit hash from elsewhere (a bigint) is folded to the same 32-bit space.
    assert.equal(cluster.chooseHost({ hash: 0x1_0000_0005n }), cluster.chooseHost({ hash: 5 }))
  }
})

test('a hashing cluster behind a route without hashPolicy warns once with SWY_ERR_HASH_POLICY_MISSING', (t) => {
  const { cluster, warnings } = makeCluster(t, { endpoints: ['10.0.0.1:80'], lbPolicy: 'maglev' })
  cluster.warnMissingHashPolicy('GET /chat')
  cluster.warnMissingHashPolicy('GET /other')
  assert.equal(warnings.length, 1)
  assert.equal((warnings[0]!.obj as { code: string }).code, 'SWY_ERR_HASH_POLICY_MISSING')
  assert.match(warnings[0]!.msg ?? '', /GET \/chat/)
  const { cluster: rr, warnings: none } = makeCluster(t, { endpoints: ['10.0.0.1:80'] }, 'rr')
  rr.warnMissingHashPolicy('GET /chat')
  assert.equal(none.length, 0)
})

test('a cluster with health checks and outlier detection leaves no handle after close()', async (t) => {
  const server = http.createServer((_req, res) => { res.end() })
  const port = await listen(server, t)
  const baseline = handles()
  const { cluster } = makeCluster(t, {
    endpoints: [`127.0.0.1:${port}`],
    healthCheck: { interval: 50, timeout: 50 },
    outlierDetection: { interval: 50 }
  })
  await cluster.ready()
  await next(cluster, 'healthChecked')
  cluster.close()
  await backToBaseline(baseline)
})
