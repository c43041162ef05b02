import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import http from 'node:http'
import { once } from 'node:events'
import dnsPacket from 'dns-packet'
import type { ResolvedAddress } from '../../src/cluster/dns-resolver.ts'
import { backToBaseline, handles, listen, makeCluster, next } from './helpers.ts'

type Zone = Record<string, { a?: string[], aaaa?: string[] } | 'nxdomain' | 'servfail' | 'silent'>

/** An authoritative DNS server on 127.0.0.1 (UDP) whose zone the test edits while it runs. */
async function dnsServer (t: TestContext, zone: Zone): Promise<{ address: string, queries: string[] }> {
  const socket = dgram.createSocket('udp4')
  const queries: string[] = []
  socket.on('message', (msg, peer) => {
    const query = dnsPacket.decode(msg)
    const question = query.questions![0]!
    queries.push(`${question.type} ${question.name}`)
    const entry = zone[question.name]
    if (entry === 'silent') return
    const rcode = entry === undefined || entry === 'nxdomain' ? 3 : entry === 'servfail' ? 2 : 0
    const records = typeof entry === 'object' ? (question.type === 'A' ? entry.a : question.type === 'AAAA' ? entry.aaaa : undefined) ?? [] : []
    const answer = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | rcode,
      questions: query.questions,
      answers: records.map(data => ({ type: question.type as 'A', name: question.name, ttl: 1, class: 'IN' as const, data }))
    })
    socket.send(answer, peer.port, peer.address)
  })
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  t.after(() => new Promise<void>((resolve) => { socket.close(() => resolve()) }))
  return { address: `127.0.0.1:${socket.address().port}`, queries }
}

const addressesOf = (list: Array<{ address: string }>): string[] => list.map(e => e.address).sort()

test('a strictDns cluster\'s endpoints are the A and AAAA answers, re-resolved every dnsRefreshRate', async (t) => {
  const zone: Zone = { 'chat.test': { a: ['127.0.0.2', '127.0.0.3'], aaaa: ['::1'] } }
  const dns = await dnsServer(t, zone)
  const { cluster, stat } = makeCluster(t, { type: 'strictDns', endpoints: ['chat.test:9000'], dnsResolvers: [dns.address], dnsRefreshRate: 100 })
  assert.deepEqual(cluster.endpoints(), [], 'nothing before the first answer')
  await cluster.ready()
  assert.deepEqual(addressesOf(cluster.endpoints()), ['127.0.0.2:9000', '127.0.0.3:9000', '[::1]:9000'])
  assert.ok(dns.queries.includes('A chat.test') && dns.queries.includes('AAAA chat.test'))
  const host = cluster.chooseHost()!
  assert.equal(host.endpoint.authority, 'chat.test:9000', 'the name stays the authority (auto host rewrite, health-check host)')
  assert.equal(host.endpoint.hostname, 'chat.test')

  zone['chat.test'] = { a: ['127.0.0.3', '127.0.0.4'] }
  await next<[ResolvedAddress[]]>(cluster, 'dnsUpdate', (list) => list.some(a => a.address === '127.0.0.4:9000'))
  assert.deepEqual(addressesOf(cluster.endpoints()), ['127.0.0.3:9000', '127.0.0.4:9000'])
  assert.ok(stat('membership_change') >= 1)
  assert.ok(stat('update_success') >= 2)
})

test('a failing lookup keeps the last answer; a name that no longer exists empties the cluster', async (t) => {
  const zone: Zone = { 'api.test': { a: ['127.0.0.5'] } }
  const dns = await dnsServer(t, zone)
  const { cluster, stat } = makeCluster(t, { type: 'strictDns', endpoints: ['api.test:8080'], dnsResolvers: [dns.address], dnsRefreshRate: 50, healthyPanicThreshold: 0 })
  await cluster.ready()
  assert.deepEqual(addressesOf(cluster.endpoints()), ['127.0.0.5:8080'])

  zone['api.test'] = 'servfail'
  await next(cluster, 'dnsError')
  await next(cluster, 'dnsUpdate')
  assert.deepEqual(addressesOf(cluster.endpoints()), ['127.0.0.5:8080'], 'SERVFAIL: the last answer stays')
  assert.ok(stat('update_failure') >= 1)

  zone['api.test'] = 'nxdomain'
  await next<[ResolvedAddress[]]>(cluster, 'dnsUpdate', (list) => list.length === 0)
  assert.deepEqual(cluster.endpoints(), [])
  assert.equal(cluster.chooseHost(), undefined)
  assert.ok(stat('update_empty') >= 1)

  zone['api.test'] = { a: ['127.0.0.6'] }
  await next<[ResolvedAddress[]]>(cluster, 'dnsUpdate', (list) => list.length === 1)
  assert.equal(cluster.chooseHost()!.address, '127.0.0.6:8080')
})

test('a DNS server that never answers: ready() still settles and the cluster keeps trying without leaking', async (t) => {
  const zone: Zone = { 'slow.test': 'silent' }
  const dns = await dnsServer(t, zone)
  const baseline = handles()
  const { cluster, stat } = makeCluster(t, { type: 'strictDns', endpoints: ['slow.test:80'], dnsResolvers: [dns.address], dnsRefreshRate: 50 })
  await cluster.ready()
  assert.deepEqual(cluster.endpoints(), [])
  assert.equal(stat('update_failure'), 1)
  zone['slow.test'] = { a: ['127.0.0.7'] }
  await next(cluster, 'dnsUpdate', () => cluster.endpoints().length === 1)
  assert.ok(dns.queries.length >= 4, 'it asked again after the silence')
  cluster.close()
  await backToBaseline(baseline)
})

test('names, weights and setEndpoints: two names on one address share it; new names resolve at once', async (t) => {
  const zone: Zone = { 'a.test': { a: ['127.0.0.8'] }, 'b.test': { a: ['127.0.0.8', '127.0.0.9'] }, 'c.test': { a: ['127.0.0.10'] } }
  const dns = await dnsServer(t, zone)
  const { cluster } = makeCluster(t, { type: 'strictDns', endpoints: [{ address: 'a.test:80', weight: 2 }, 'b.test:80'], dnsResolvers: [dns.address], dnsRefreshRate: 5000 })
  await cluster.ready()
  assert.deepEqual(cluster.endpoints().sort((x, y) => x.address.localeCompare(y.address)), [
    { address: '127.0.0.8:80', weight: 3, health: 'healthy' },
    { address: '127.0.0.9:80', weight: 1, health: 'healthy' }
  ])
  cluster.setEndpoints(['c.test:80'])
  await next(cluster, 'dnsUpdate')
  assert.deepEqual(addressesOf(cluster.endpoints()), ['127.0.0.10:80'])
  assert.throws(() => cluster.setEndpoints(['c.test:80', 'ftp://d.test']), { code: 'SWY_ERR_CLUSTER_OPTIONS' })
})

test('resolved endpoints are health-checked with the name as host, and ready() waits for both', async (t) => {
  const seen: string[] = []
  const server = http.createServer((req, res) => { seen.push(req.headers.host ?? ''); res.end() })
  const port = await listen(server, t)
  const dns = await dnsServer(t, { 'app.test': { a: ['127.0.0.1'] } })
  const { cluster } = makeCluster(t, {
    type: 'strictDns', endpoints: [`app.test:${port}`], dnsResolvers: [dns.address], healthCheck: { interval: 200, timeout: 200 }
  })
  await cluster.ready()
  assert.deepEqual(cluster.endpoints(), [{ address: `127.0.0.1:${port}`, weight: 1, health: 'healthy' }])
  assert.equal(seen[0], `app.test:${port}`)
})

test('closing a strictDns cluster mid-lookup cancels it and leaves no handle', async (t) => {
  const dns = await dnsServer(t, { 'slow.test': 'silent' })
  const baseline = handles()
  const { cluster } = makeCluster(t, { type: 'strictDns', endpoints: ['slow.test:80'], dnsResolvers: [dns.address], dnsRefreshRate: 1000 })
  const ready = cluster.ready()
  cluster.close()
  await ready
  await backToBaseline(baseline)
})

test('without dnsResolvers, names resolve through the system (getaddrinfo), /etc/hosts included', async (t) => {
  const { cluster } = makeCluster(t, { type: 'strictDns', endpoints: ['localhost:9000'], dnsRefreshRate: 5000 })
  await cluster.ready()
  const addresses = addressesOf(cluster.endpoints())
  assert.ok(addresses.includes('127.0.0.1:9000') || addresses.includes('[::1]:9000'), `localhost resolved to ${addresses.join(', ')}`)
  assert.equal(cluster.hosts()[0]!.endpoint.authority, 'localhost:9000')
})
