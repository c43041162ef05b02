/**
 * Endpoints that change while the proxy runs (Envoy's EDS without a control plane): `setEndpoints` at
 * runtime (validated; a bad entry throws a coded error and changes nothing), `strictDns` re-resolving
 * through a DNS server on loopback, and what becomes of the open tunnels of an endpoint that is removed,
 * turns unhealthy or is ejected: they stay (Envoy's default) unless `drainTimeout` or
 * `closeConnectionsOnHostHealthFailure` says otherwise; each mode.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { Host } from '@switchyard/core/internal'
import { startDnsServer } from '../helpers/dns-server.ts'
import { startBackend, startBackends, tally, type Backend } from '../helpers/lb-backends.ts'
import { echoes, lbModes, sendMany, startLbProxy, tunnelModes, type LbProxy } from '../helpers/lb-proxy.ts'
import { stat } from '../helpers/start-proxy.ts'

const landed = async (lb: LbProxy, n: number): Promise<Record<string, number>> => tally((await sendMany(lb, n)).map((a) => a.backend ?? `${a.status}`))

/** Resolves when the host at `address` turns `health`. */
function turns (lb: LbProxy, address: string, health: string): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (lb.cluster.endpoints().find((e) => e.address === address)?.health !== health) return
      lb.cluster.off('change', check)
      resolve()
    }
    lb.cluster.on('change', check)
    check()
  })
}

/** Resolves once every tunnel the backend accepted has closed. */
async function allClosed (backend: Backend): Promise<void> {
  while (backend.tunnels.size > 0) await once(backend, 'closed')
}

for (const mode of lbModes) {
  test(`setEndpoints at runtime: an added endpoint takes traffic at once, a removed one takes none (${mode})`, { timeout: 30_000 }, async (t) => {
    const backends = await startBackends(t, 3)
    const [b0, b1, b2] = backends as [Backend, Backend, Backend]
    const lb = await startLbProxy(t, mode, backends)
    lb.cluster.setEndpoints([lb.endpointOf(b0)])
    assert.deepEqual(await landed(lb, 4), { b0: 4 })
    lb.cluster.setEndpoints([lb.endpointOf(b0), { address: lb.endpointOf(b1), weight: 3 }])
    assert.deepEqual(lb.cluster.endpoints().map((e) => [e.address, e.weight, e.health]), [[lb.endpointOf(b0), 1, 'healthy'], [lb.endpointOf(b1), 3, 'healthy']])
    assert.deepEqual(await landed(lb, 8), { b0: 2, b1: 6 })
    lb.cluster.setEndpoints([lb.endpointOf(b2)])
    assert.deepEqual(await landed(lb, 4), { b2: 4 })
    assert.equal(stat(lb.front, 'cluster.up.membership_change'), 3)
    assert.equal(stat(lb.front, 'cluster.up.membership_total'), 1)
  })
}

test('setEndpoints on a health-checked cluster: a new endpoint takes traffic only after one passing check', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 2)
  const [b0, b1] = backends as [Backend, Backend]
  const lb = await startLbProxy(t, 'new style', [b0], { cluster: { healthCheck: { interval: 2000, timeout: 2000 } } })
  // Its first check waits for the test: until it passes, the endpoint is pending.
  b1.health = 'held'
  const checked = once(b1, 'healthCheck')
  lb.cluster.setEndpoints([b0.address, b1.address])
  assert.deepEqual(lb.cluster.endpoints().map((e) => e.health), ['healthy', 'pending'])
  await checked
  assert.deepEqual(await landed(lb, 4), { b0: 4 }, 'pending takes nothing')
  b1.answerHeldChecks()
  await turns(lb, b1.address, 'healthy')
  assert.deepEqual(await landed(lb, 4), { b0: 2, b1: 2 })
})

test('setEndpoints on a health-checked cluster: new endpoints awaiting their first check put the cluster in no panic and take no traffic', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 3)
  const [b0, b1, b2] = backends as [Backend, Backend, Backend]
  const lb = await startLbProxy(t, 'new style', [b0], { cluster: { healthCheck: { interval: 2000, timeout: 2000 } } })
  // Two of three pending would be a healthy share of 33 %: they are left out of it, as Envoy's excluded hosts.
  b1.health = 'held'
  b2.health = 'held'
  const checked = Promise.all([once(b1, 'healthCheck'), once(b2, 'healthCheck')])
  lb.cluster.setEndpoints([b0.address, b1.address, b2.address])
  assert.deepEqual(lb.cluster.endpoints().map((e) => e.health), ['healthy', 'pending', 'pending'])
  await checked
  assert.deepEqual(await landed(lb, 6), { b0: 6 }, 'pending takes nothing, even below the panic threshold')
  assert.equal(stat(lb.front, 'cluster.up.lb_healthy_panic'), 0)
  b1.answerHeldChecks()
  b2.answerHeldChecks()
  await Promise.all([turns(lb, b1.address, 'healthy'), turns(lb, b2.address, 'healthy')])
  assert.deepEqual(await landed(lb, 6), { b0: 2, b1: 2, b2: 2 })
})

test('setEndpoints with a bad entry throws SWY_ERR_CLUSTER_OPTIONS naming it and changes nothing', { timeout: 30_000 }, async (t) => {
  const backends = await startBackends(t, 2)
  const [b0, b1] = backends as [Backend, Backend]
  const lb = await startLbProxy(t, 'plain', backends)
  const before = lb.cluster.endpoints()
  const bad: Array<[unknown, string]> = [
    [[b0.address, { address: b1.address, weight: 0 }], 'endpoints[1].weight'],
    [[b0.address, { address: b1.address, weight: 129 }], 'endpoints[1].weight'],
    [[b0.address, { address: b1.address, zone: 'a' }], 'endpoints[1]'],
    [[b0.address, 'no port here'], 'endpoints[1]'],
    [[b0.address, '127.0.0.1:99999'], 'endpoints[1]'],
    [[b0.address, 'ftp://127.0.0.1:21'], 'endpoints[1]'],
    [[], 'endpoints'],
    ['127.0.0.1:80', 'endpoints']
  ]
  for (const [list, field] of bad) {
    assert.throws(() => lb.cluster.setEndpoints(list as string[]), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SWY_ERR_CLUSTER_OPTIONS')
      assert.ok(err.message.includes('"up"') && err.message.includes(field), `${err.message} does not name ${field}`)
      return true
    }, JSON.stringify(list))
    assert.deepEqual(lb.cluster.endpoints(), before)
  }
  assert.equal(stat(lb.front, 'cluster.up.membership_change'), 0)
  assert.deepEqual(await landed(lb, 4), { b0: 2, b1: 2 }, 'still serving from both')
  // The public decorator is the same cluster.
  assert.throws(() => lb.front.switchyard.clusters.get('up')!.setEndpoints([{ address: b0.address, weight: -1 }]), { code: 'SWY_ERR_CLUSTER_OPTIONS' })
})

for (const mode of ['plain', 'new style', 'legacy'] as const) {
  test(`strictDns: the endpoints follow the DNS answers, re-resolved every dnsRefreshRate; a removed address's tunnel stays open (${mode})`, { timeout: 30_000 }, async (t) => {
    // Two backends on one port at two loopback addresses: a name's A records are the endpoints.
    const first = await startBackend(t, 'b2', '127.0.0.2')
    const second = await startBackend(t, 'b3', '127.0.0.3', first.port)
    const dns = await startDnsServer(t, { 'chat.test': { a: ['127.0.0.2'] } })
    const lb = await startLbProxy(t, mode, [first], {
      cluster: { type: 'strictDns', endpoints: [`chat.test:${first.port}`], dnsResolvers: [dns.address], dnsRefreshRate: 100 }
    })
    const addresses = (): string[] => lb.cluster.endpoints().map((e) => e.address).sort()
    const answered = (list: string[]): Promise<void> => new Promise((resolve) => {
      const check = (): void => { if (JSON.stringify(addresses()) === JSON.stringify(list)) { lb.cluster.off('dnsUpdate', check); resolve() } }
      lb.cluster.on('dnsUpdate', check)
    })
    assert.deepEqual(addresses(), [first.address])
    assert.deepEqual(await landed(lb, 4), { b2: 4 })
    const held = mode === 'plain' ? undefined : (await lb.send({ hold: true })).client

    dns.zone['chat.test'] = { a: ['127.0.0.2', '127.0.0.3'] }
    await answered([first.address, second.address])
    assert.deepEqual(await landed(lb, 6), { b2: 3, b3: 3 })
    // The upstream sees the name as the authority, not the address.
    assert.equal(second.seen.at(-1)!.headers.host, mode === 'plain' ? `127.0.0.1:${lb.port}` : 'lb.test')

    dns.zone['chat.test'] = { a: ['127.0.0.3'] }
    await answered([second.address])
    assert.deepEqual(await landed(lb, 4), { b3: 4 })
    if (held !== undefined) {
      assert.ok(await echoes(held, 'still here'), 'a removed endpoint\'s tunnel stays until it ends')
      held.socket.destroy()
    }
    assert.ok(stat(lb.front, 'cluster.up.update_success') >= 3)
    assert.ok(dns.queries.includes('A chat.test'))
  })
}

for (const mode of tunnelModes) {
  test(`a removed endpoint's open tunnels stay by default and are closed drainTimeout after the removal when set (${mode})`, { timeout: 30_000 }, async (t) => {
    for (const drainTimeout of [undefined, 100]) {
      const backends = await startBackends(t, 2)
      const [b0, b1] = backends as [Backend, Backend]
      const lb = await startLbProxy(t, mode, backends, { cluster: drainTimeout === undefined ? {} : { drainTimeout } })
      lb.cluster.setEndpoints([lb.endpointOf(b0)])
      const held = (await lb.send({ hold: true })).client!
      lb.cluster.setEndpoints([lb.endpointOf(b1)])
      assert.deepEqual(await landed(lb, 3), { b1: 3 })
      if (drainTimeout === undefined) {
        assert.ok(await echoes(held, 'stays'))
        assert.equal(b0.tunnels.size, 1)
        held.socket.destroy()
      } else {
        // Closed by the proxy, the upstream side too (the client sent nothing since its 101).
        await held.done
        await allClosed(b0)
      }
    }
  })

  test(`an endpoint that turns unhealthy keeps its open tunnels, unless closeConnectionsOnHostHealthFailure (${mode})`, { timeout: 30_000 }, async (t) => {
    for (const close of [false, true]) {
      const backends = await startBackends(t, 2)
      const [, b1] = backends as [Backend, Backend]
      const lb = await startLbProxy(t, mode, backends, {
        cluster: { healthCheck: { interval: 200, timeout: 200, unhealthyThreshold: 1, healthyThreshold: 1 }, closeConnectionsOnHostHealthFailure: close }
      })
      const answers = [await lb.send({ hold: true }), await lb.send({ hold: true })]
      const onSick = answers.find((a) => a.backend === 'b1')!.client!
      const onWell = answers.find((a) => a.backend === 'b0')!.client!
      b1.health = 'fail'
      await turns(lb, lb.endpointOf(b1), 'unhealthy')
      if (close) {
        await onSick.done
        await allClosed(b1)
      } else {
        assert.ok(await echoes(onSick, 'still open while unhealthy'))
        onSick.socket.destroy()
      }
      assert.ok(await echoes(onWell, 'the healthy endpoint\'s tunnel is untouched'))
      onWell.socket.destroy()
      assert.deepEqual(await landed(lb, 2), { b0: 2 })
    }
  })

  test(`an ejected endpoint keeps its open tunnels, unless closeConnectionsOnHostHealthFailure (${mode})`, { timeout: 30_000 }, async (t) => {
    for (const close of [false, true]) {
      const backends = await startBackends(t, 2)
      const [, b1] = backends as [Backend, Backend]
      const lb = await startLbProxy(t, mode, backends, {
        cluster: { outlierDetection: { consecutive5xx: 1, interval: 10_000, baseEjectionTime: 60_000, maxEjectionPercent: 50 }, closeConnectionsOnHostHealthFailure: close }
      })
      const answers = [await lb.send({ hold: true }), await lb.send({ hold: true })]
      const onBad = answers.find((a) => a.backend === 'b1')!.client!
      // From now on it refuses upgrades with a 503: the next one it gets ejects it.
      b1.status = 503
      const ejected = once(lb.cluster, 'ejected') as Promise<[Host]>
      for (let i = 0; i < 2; i++) await lb.send()
      assert.equal((await ejected)[0].address, lb.endpointOf(b1))
      if (close) {
        await onBad.done
        await allClosed(b1)
      } else {
        assert.ok(await echoes(onBad, 'still open while ejected'))
        onBad.socket.destroy()
      }
      for (const a of answers) if (a.backend === 'b0') a.client!.socket.destroy()
    }
  })
}
