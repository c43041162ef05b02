/**
 * Active health checks through the proxy: `app.ready()` waits for the first round, an unhealthy endpoint
 * gets no new request or upgrade (each mode), it comes back after `healthyThreshold` passing checks, and a
 * health endpoint that answers garbage, never answers or resets counts as a failure and leaves nothing
 * behind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { Host } from '@switchyard/core/internal'
import { startBackends, tally, type Backend, type HealthMode } from '../helpers/lb-backends.ts'
import { lbModes, sendMany, startLbProxy, type LbProxy } from '../helpers/lb-proxy.ts'
import { watchHandles } from '../helpers/leak-check.ts'
import { freePort } from '../helpers/net.ts'
import { stat } from '../helpers/start-proxy.ts'

// Checks every 200 ms; the timeout is as long as the interval allows so that a loaded machine's slow
// answer is not a failure (a test that needs a timeout sets a short one).
const healthCheck = { path: '/healthz', interval: 200, timeout: 200, unhealthyThreshold: 2, healthyThreshold: 3 }

interface CheckResult { ok: boolean, network: boolean }

/** The host of the front's cluster that stands for `backend`. */
function hostOf (lb: LbProxy, backend: Backend): Host {
  const address = lb.endpointOf(backend)
  const host = lb.cluster.hosts().find((h) => h.address === address)
  assert.ok(host !== undefined, `no host ${address}`)
  return host
}

/**
 * Resolves when `backend`'s host turns `health`, with the run of check results (as the proxy judged them)
 * that turned it: the consecutive failures before `unhealthy`, the consecutive passes before `healthy`.
 */
function turns (lb: LbProxy, backend: Backend, health: 'healthy' | 'unhealthy'): Promise<CheckResult[]> {
  const host = hostOf(lb, backend)
  const run: CheckResult[] = []
  return new Promise((resolve) => {
    const onChecked = (h: Host, result: CheckResult): void => {
      if (h !== host) return
      if (result.ok === (health === 'healthy')) run.push(result)
      else run.length = 0
      if (host.health !== health) return
      lb.cluster.off('healthChecked', onChecked)
      resolve(run)
    }
    lb.cluster.on('healthChecked', onChecked)
  })
}

test('app.ready() waits for the first round of checks: no endpoint is pending once listen() returns', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 4)
  backends[2]!.health = 'fail'
  // Never answers: the first round ends at this check's timeout, not before.
  backends[3]!.health = 'silent'
  const lb = await startLbProxy(t, 'plain', backends, { cluster: { healthCheck: { ...healthCheck, interval: 1000, timeout: 500 } } })
  assert.deepEqual(lb.cluster.endpoints().map((e) => e.health), ['healthy', 'healthy', 'unhealthy', 'unhealthy'])
  for (const b of backends) assert.ok(b.healthChecks >= 1, `${b.name} was not checked before ready`)
  assert.equal(backends[0]!.seen.length, 0, 'a health check is not traffic')
  // Two of four healthy is not below the panic threshold (50 %): the unhealthy two get nothing.
  const answers = await sendMany(lb, 12)
  assert.deepEqual(tally(answers.map((a) => a.backend!)), { b0: 6, b1: 6 })
})

test('health checks are GETs of the path with user-agent switchyard and the endpoint as host', { timeout: 30_000 }, async (t) => {
  const [b] = await startBackends(t, 1)
  const seen = new Promise<import('node:http').IncomingMessage>((resolve) => b!.once('healthCheck', resolve))
  await startLbProxy(t, 'plain', [b!], { cluster: { healthCheck } })
  const req = await seen
  assert.equal(req.method, 'GET')
  assert.equal(req.url, '/healthz')
  assert.equal(req.headers['user-agent'], 'switchyard')
  assert.equal(req.headers.host, b!.address)
})

for (const mode of lbModes) {
  test(`an unhealthy endpoint gets no new request, and comes back after healthyThreshold passing checks (${mode})`, { timeout: 30_000 }, async (t) => {
    const backends = await startBackends(t, 3)
    const [, sick] = backends as [Backend, Backend, Backend]
    const lb = await startLbProxy(t, mode, backends, { cluster: { healthCheck } })
    assert.deepEqual(lb.cluster.endpoints().map((e) => e.health), ['healthy', 'healthy', 'healthy'])

    // Fails from its next check on: unhealthy after unhealthyThreshold consecutive failures.
    await sick.nextHealthCheck()
    sick.health = 'fail'
    const failures = await turns(lb, sick, 'unhealthy')
    assert.equal(failures.length, healthCheck.unhealthyThreshold)

    const during = await sendMany(lb, 30)
    assert.equal(tally(during.map((a) => a.backend!)).b1, undefined, `${sick.name} still got traffic`)
    for (const a of during) assert.equal(a.status, mode === 'plain' ? 200 : 101)

    await sick.nextHealthCheck()
    sick.health = 'ok'
    const passes = await turns(lb, sick, 'healthy')
    assert.equal(passes.length, healthCheck.healthyThreshold)

    const after = await sendMany(lb, 30)
    assert.deepEqual(tally(after.map((a) => a.backend!)), { b0: 10, b1: 10, b2: 10 }, 'round robin over all three again')
  })
}

test('a TCP health check only connects: a listening endpoint is healthy, a closed port is not and gets no upgrade', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 2)
  const dead = await freePort()
  const lb = await startLbProxy(t, 'new style', backends, { cluster: { healthCheck: { tcp: true, interval: 200, timeout: 200 } } })
  lb.cluster.setEndpoints([...backends.map((b) => b.address), `127.0.0.1:${dead}`])
  await new Promise<void>((resolve) => {
    const check = (): void => { if (lb.cluster.endpoints()[2]?.health === 'unhealthy') { lb.cluster.off('health', check); resolve() } }
    lb.cluster.on('health', check)
  })
  assert.deepEqual(lb.cluster.endpoints().map((e) => e.health), ['healthy', 'healthy', 'unhealthy'])
  assert.equal(backends[0]!.healthChecks, 0, 'no HTTP request was sent')
  assert.ok(backends[0]!.connections >= 1)
  const answers = await sendMany(lb, 10)
  assert.deepEqual(tally(answers.map((a) => a.backend!)), { b0: 5, b1: 5 })
})

for (const fault of ['garbage', 'silent', 'reset'] as const satisfies readonly HealthMode[]) {
  test(`a health endpoint that ${fault === 'garbage' ? 'answers garbage' : fault === 'silent' ? 'never answers' : 'resets'} fails its checks and leaves no socket behind`, { timeout: 30_000 }, async (t) => {
    const backends = await startBackends(t, 2)
    const [good, bad] = backends as [Backend, Backend]
    const watch = watchHandles()
    await watch.mark()
    const lb = await startLbProxy(t, 'plain', backends, { cluster: { healthCheck: { ...healthCheck, unhealthyThreshold: 3 } } })
    assert.equal(hostOf(lb, bad).health, 'healthy')
    const start = stat(lb.front, 'cluster.up.health_check.network_failure')
    await bad.nextHealthCheck()
    bad.health = fault
    const failures = await turns(lb, bad, 'unhealthy')
    assert.equal(failures.length, 3)
    for (const f of failures) assert.equal(f.network, true, 'a failure of the network, not a status')
    assert.ok(stat(lb.front, 'cluster.up.health_check.network_failure') - start >= 3)

    // Right after a check has ended nothing is in flight: stop checking there and count what is left.
    await once(lb.cluster, 'healthChecked')
    lb.cluster.close()
    // A check the close cut short may still sit in its endpoint's listen queue: two turns of the loop let
    // the server accept it, so settled() awaits it like the others.
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve))
    await watch.settled({ keep: (s) => s.remotePort === lb.port || s.localPort === lb.port })
    // And the proxy still serves, from the healthy endpoint.
    const answers = await sendMany(lb, 6)
    assert.deepEqual(tally(answers.map((a) => a.backend!)), { [good.name]: 6 })
  })
}
