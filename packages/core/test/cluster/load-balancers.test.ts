import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Host } from '../../src/cluster/host.ts'
import { parseEndpoint } from '../../src/cluster/endpoint.ts'
import type { LoadBalancer } from '../../src/cluster/load-balancer.ts'
import { RoundRobinLoadBalancer } from '../../src/cluster/round-robin.ts'
import { LeastRequestLoadBalancer } from '../../src/cluster/least-request.ts'
import { RandomLoadBalancer } from '../../src/cluster/random.ts'
import { RingHashLoadBalancer } from '../../src/cluster/ring-hash.ts'
import { MaglevLoadBalancer } from '../../src/cluster/maglev.ts'
import { hash32 } from '../../src/cluster/hash.ts'

const PICKS = 1000

function hosts (...weights: number[]): Host[] {
  return weights.map((w, i) => new Host(parseEndpoint(`10.0.0.${i + 1}:9000`), `10.0.0.${i + 1}:9000`, w, 'healthy'))
}

function built<T extends LoadBalancer> (lb: T, list: Host[]): T {
  lb.rebuild(list)
  return lb
}

/** Picks PICKS times (with a fresh key each time for the hashing policies) and counts per host. */
function distribution (lb: LoadBalancer, list: Host[], keyed = false): number[] {
  const counts = new Map<Host, number>(list.map(h => [h, 0]))
  for (let i = 0; i < PICKS; i++) {
    const host = lb.pick(keyed ? hash32(`user-${i}`) : undefined, 0)!
    counts.set(host, counts.get(host)! + 1)
  }
  return list.map(h => counts.get(h)!)
}

/** Every count within `tolerance` picks of its weight's share of PICKS. */
function assertShares (counts: number[], weights: number[], tolerance: number): void {
  const total = weights.reduce((a, b) => a + b, 0)
  for (const [i, count] of counts.entries()) {
    const expected = PICKS * weights[i]! / total
    assert.ok(Math.abs(count - expected) <= tolerance, `host ${i}: ${count} picks, expected ${expected} ± ${tolerance} (all: ${counts.join(', ')})`)
  }
}

test('round robin gives equal hosts exactly equal turns and weighted hosts their exact share', () => {
  const equal = hosts(1, 1, 1, 1)
  assert.deepEqual(distribution(built(new RoundRobinLoadBalancer(), equal), equal), [250, 250, 250, 250])
  const weighted = hosts(1, 3)
  assertShares(distribution(built(new RoundRobinLoadBalancer(), weighted), weighted), [1, 3], 1)
})

test('weighted round robin interleaves: the weight-1 host is never picked twice in a row against weight 3', () => {
  const list = hosts(1, 3)
  const lb = built(new RoundRobinLoadBalancer(), list)
  let previous: Host | undefined
  for (let i = 0; i < 400; i++) {
    const host = lb.pick(undefined, 0)
    if (host === list[0]) assert.notEqual(previous, list[0], `pick ${i}`)
    previous = host
  }
})

test('random spreads 1,000 picks within ±75 of each host\'s weighted share', () => {
  const equal = hosts(1, 1, 1, 1)
  assertShares(distribution(built(new RandomLoadBalancer(), equal), equal), [1, 1, 1, 1], 75)
  const weighted = hosts(1, 3)
  assertShares(distribution(built(new RandomLoadBalancer(), weighted), weighted), [1, 3], 75)
})

test('least request on idle hosts spreads by weight (P2C for equal weights, EDF for unequal)', () => {
  const equal = hosts(1, 1, 1, 1)
  assertShares(distribution(built(new LeastRequestLoadBalancer(), equal), equal), [1, 1, 1, 1], 75)
  const weighted = hosts(1, 3)
  assertShares(distribution(built(new LeastRequestLoadBalancer(), weighted), weighted), [1, 3], 5)
})

test('least request prefers the less loaded host', () => {
  const list = hosts(1, 1, 1)
  list[0]!.activeRequests = 50
  const [busy] = distribution(built(new LeastRequestLoadBalancer(), list), list)
  // Two random choices pick the busy host only when both land on it: 1/9 of the time (~111 of 1,000).
  assert.ok(busy! < 200, `the busy host got ${busy} of ${PICKS}`)

  // With more choices it is picked less still; choiceCount 3 → 1/27.
  const [busier] = distribution(built(new LeastRequestLoadBalancer({ choiceCount: 3 }), list), list)
  assert.ok(busier! < 100, `with choiceCount 3 the busy host got ${busier}`)
})

test('least request keeps long-lived tunnels even: 1,000 that never end land within a few of each other', () => {
  const list = hosts(1, 1, 1, 1)
  const lb = built(new LeastRequestLoadBalancer(), list)
  for (let i = 0; i < PICKS; i++) lb.pick(undefined, 0)!.activeRequests++
  const counts = list.map(h => h.activeRequests)
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 12, `open tunnels per host: ${counts.join(', ')}`)
})

test('least request with unequal weights lowers a busy host\'s weight', () => {
  const list = hosts(3, 1)
  list[0]!.activeRequests = 8 // weight 3 / (8 + 1) = 1/3 against the idle host's 1
  const [heavy, light] = distribution(built(new LeastRequestLoadBalancer(), list), list)
  assert.ok(light! > heavy!, `busy weight-3 host ${heavy}, idle weight-1 host ${light}`)
})

for (const [name, make] of [
  ['ring hash', () => new RingHashLoadBalancer()],
  ['maglev', () => new MaglevLoadBalancer()]
] as Array<[string, () => LoadBalancer]>) {
  test(`${name} spreads 1,000 keys within ±75 of each host's weighted share`, () => {
    const equal = hosts(1, 1, 1, 1)
    assertShares(distribution(built(make(), equal), equal, true), [1, 1, 1, 1], 75)
    const weighted = hosts(1, 3)
    assertShares(distribution(built(make(), weighted), weighted, true), [1, 3], 75)
  })

  test(`${name} sends the same key to the same host, across rebuilds and insertion orders`, () => {
    const list = hosts(1, 1, 1, 1, 1)
    const a = built(make(), list)
    const b = built(make(), [...list].reverse())
    for (let i = 0; i < PICKS; i++) {
      const key = hash32(`user-${i}`)
      const first = a.pick(key, 0)
      assert.equal(a.pick(key, 0), first)
      assert.equal(b.pick(key, 0), first, `key ${i} differs between two balancers built from the same hosts`)
    }
    a.rebuild(list)
    for (let i = 0; i < 100; i++) assert.equal(a.pick(hash32(`user-${i}`), 0), b.pick(hash32(`user-${i}`), 0))
  })

  test(`${name}: removing one of 10 endpoints moves at most its own share of keys (≤ 1/N + 5 %)`, () => {
    const list = hosts(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    const lb = built(make(), list)
    const keys = Array.from({ length: 10000 }, (_, i) => hash32(`room-${i}`))
    const before = keys.map(k => lb.pick(k, 0))
    const removed = list[3]!
    lb.rebuild(list.filter(h => h !== removed))
    let moved = 0
    let movedOffOthers = 0
    for (const [i, key] of keys.entries()) {
      const after = lb.pick(key, 0)
      assert.notEqual(after, removed)
      if (after !== before[i]) {
        moved++
        if (before[i] !== removed) movedOffOthers++
      }
    }
    assert.ok(moved / keys.length <= 1 / 10 + 0.05, `${moved} of ${keys.length} keys moved`)
    if (name === 'ring hash') assert.equal(movedOffOthers, 0, 'a key on a surviving host stays there')
  })

  test(`${name} gives each retry attempt a host the attempts before did not get, the same one for a key each time, and picks at random without a hash`, () => {
    const list = hosts(1, 1, 1, 1)
    const lb = built(make(), list)
    for (let i = 0; i < 200; i++) {
      const key = hash32(`user-${i}`)
      const picks = [0, 1, 2, 3].map(attempt => lb.pick(key, attempt))
      // A retry that came back to the host that just failed (neighbouring ring points share a host
      // most of the time) was no retry at all.
      assert.equal(new Set(picks).size, 4, `key ${i}: attempts got ${picks.map(h => list.indexOf(h!)).join(', ')}`)
      assert.equal(lb.pick(key, 1), picks[1], 'a retry of one key goes to one place')
    }
    const seen = new Set<Host | undefined>()
    for (let i = 0; i < 200; i++) seen.add(lb.pick(undefined, 0))
    assert.equal(seen.size, 4, 'no hash: every host is reachable')
  })
}

test('every policy answers undefined with no hosts, and after hosts come back, a host again', () => {
  for (const lb of [new RoundRobinLoadBalancer(), new LeastRequestLoadBalancer(), new RandomLoadBalancer(), new RingHashLoadBalancer(), new MaglevLoadBalancer()]) {
    lb.rebuild([])
    assert.equal(lb.pick(7, 0), undefined)
    const list = hosts(2, 1)
    lb.rebuild(list)
    assert.ok(list.includes(lb.pick(7, 0)!))
  }
})

test('the ring gives each unit of weight minimumRingSize points and stays within maximumRingSize', () => {
  const ring = built(new RingHashLoadBalancer({ minimumRingSize: 64 }), hosts(1, 2, 3))
  assert.equal(ring.size, 6 * 64)
  const capped = built(new RingHashLoadBalancer({ minimumRingSize: 64, maximumRingSize: 100 }), hosts(1, 2, 3))
  assert.ok(capped.size <= 100, `ring of ${capped.size}`)
})

test('MurmurHash3 matches its published test vectors', () => {
  assert.equal(hash32('', 0), 0)
  assert.equal(hash32('', 1), 0x514e28b7)
  assert.equal(hash32('Hello, world!', 1234), 0xfaf6cdb3)
  assert.equal(hash32('The quick brown fox jumps over the lazy dog', 0x9747b28c), 0x2fa826cd)
})
