import { test } from 'node:test'
import diagnostics from 'node:diagnostics_channel'
import assert from 'node:assert/strict'
import http from 'node:http'
import https from 'node:https'
import http2 from 'node:http2'
import net from 'node:net'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Host } from '../../src/cluster/host.ts'
import type { ProbeResult } from '../../src/cluster/health-probe.ts'
import { backToBaseline, closedPort, handles, listen, makeCluster, next } from './helpers.ts'

// Short, but long enough for a loopback answer on a loaded machine: a slow pass must not read as a failure.
const fast = { interval: 200, timeout: 200, unhealthyThreshold: 3, healthyThreshold: 2 }

/** An HTTP upstream whose health answer the test changes, recording each check's headers. */
async function healthServer (t: Parameters<typeof listen>[1]) {
  const state = { status: 200, seen: [] as http.IncomingHttpHeaders[], paths: [] as string[] }
  const server = http.createServer((req, res) => {
    state.seen.push(req.headers)
    state.paths.push(req.url ?? '')
    res.writeHead(state.status, { 'content-type': 'text/plain' }).end('ok')
  })
  const port = await listen(server, t)
  return { state, port, server }
}

test('an HTTP check sends GET path with user-agent switchyard and the endpoint as host; ready() waits for it', async (t) => {
  const up = await healthServer(t)
  const { cluster, stat } = makeCluster(t, { endpoints: [`127.0.0.1:${up.port}`], healthCheck: { path: '/status?deep=1', ...fast } })
  assert.equal(cluster.endpoints()[0]!.health, 'pending')
  await cluster.ready()
  assert.deepEqual(cluster.endpoints(), [{ address: `127.0.0.1:${up.port}`, weight: 1, health: 'healthy' }])
  assert.equal(up.state.paths[0], '/status?deep=1')
  assert.equal(up.state.seen[0]!['user-agent'], 'switchyard')
  assert.equal(up.state.seen[0]!.host, `127.0.0.1:${up.port}`)
  assert.equal(stat('health_check.attempt'), 1)
  assert.equal(stat('health_check.success'), 1)
  assert.equal(stat('membership_healthy'), 1)
})

test('unhealthyThreshold failures mark an endpoint unhealthy and healthyThreshold passes bring it back', async (t) => {
  const up = await healthServer(t)
  const { cluster, stat } = makeCluster(t, { endpoints: [`127.0.0.1:${up.port}`], healthCheck: fast })
  await cluster.ready()
  const results: boolean[] = []
  cluster.on('healthChecked', (_host: Host, r: ProbeResult) => results.push(r.ok))

  up.state.status = 503
  const [, down] = await next<[Host, string]>(cluster, 'health')
  assert.equal(down, 'unhealthy')
  assert.deepEqual(results.slice(-3), [false, false, false], 'three consecutive failures')
  assert.ok(results.filter(ok => !ok).length === 3, `failures before the flip: ${results.join(',')}`)
  assert.equal(cluster.chooseHost(), cluster.hosts()[0], 'alone and unhealthy: panic uses it anyway')
  assert.ok(stat('health_check.failure') >= 3)
  assert.equal(stat('health_check.network_failure'), 0, 'a 503 is not a network failure')
  assert.equal(stat('membership_healthy'), 0)

  results.length = 0
  up.state.status = 200
  const [, up2] = await next<[Host, string]>(cluster, 'health')
  assert.equal(up2, 'healthy')
  assert.deepEqual(results, [true, true], 'two consecutive passes')
  assert.equal(stat('membership_healthy'), 1)
})

test('an unhealthy endpoint gets no new request while the other is healthy', async (t) => {
  const good = await healthServer(t)
  const bad = await healthServer(t)
  bad.state.status = 500
  const { cluster } = makeCluster(t, { endpoints: [`127.0.0.1:${good.port}`, `127.0.0.1:${bad.port}`], healthCheck: fast })
  await cluster.ready()
  assert.deepEqual(cluster.endpoints().map(e => e.health), ['healthy', 'unhealthy'])
  assert.equal(cluster.panic, false, 'half healthy is not below the 50 % panic threshold')
  for (let i = 0; i < 50; i++) assert.equal(cluster.chooseHost()!.address, `127.0.0.1:${good.port}`)
})

test('expectedStatuses ranges decide what passes', async (t) => {
  const up = await healthServer(t)
  up.state.status = 204
  const { cluster } = makeCluster(t, { endpoints: [`127.0.0.1:${up.port}`], healthCheck: { ...fast, expectedStatuses: [[200, 200], [204, 204]] } })
  await cluster.ready()
  assert.equal(cluster.endpoints()[0]!.health, 'healthy')
  up.state.status = 201
  const [, health] = await next<[Host, string]>(cluster, 'health')
  assert.equal(health, 'unhealthy')
})

test('a TCP check passes on connect and fails on a refused connection, sending nothing', async (t) => {
  let received = 0
  const server = net.createServer((socket) => {
    socket.on('data', (d) => { received += d.length })
    socket.on('error', () => {})
  })
  const port = await listen(server, t)
  const dead = await closedPort()
  const { cluster, stat } = makeCluster(t, { endpoints: [`127.0.0.1:${port}`, `127.0.0.1:${dead}`], healthCheck: { tcp: true, ...fast } })
  await cluster.ready()
  assert.deepEqual(cluster.endpoints().map(e => e.health), ['healthy', 'unhealthy'])
  assert.equal(stat('health_check.network_failure'), 1)
  assert.equal(received, 0)
})

test('an HTTP/2 cluster is checked over HTTP/2 (h2c)', async (t) => {
  const server = http2.createServer()
  const seen: http2.IncomingHttpHeaders[] = []
  server.on('stream', (stream, headers) => {
    seen.push(headers)
    stream.respond({ ':status': 200 })
    stream.end('ok')
  })
  const port = await listen(server as unknown as net.Server, t)
  const { cluster } = makeCluster(t, { endpoints: [`127.0.0.1:${port}`], protocol: 'http2', healthCheck: fast })
  await cluster.ready()
  assert.equal(cluster.endpoints()[0]!.health, 'healthy')
  assert.equal(seen[0]!['user-agent'], 'switchyard')
  assert.equal(seen[0]![':authority'], `127.0.0.1:${port}`)
})

test('a check\'s socket still reports its close to listeners outside the probe (TCP and HTTP/2 checks)', { timeout: 10_000 }, async (t) => {
  // Diagnostics subscribers and leak checkers watch every socket's 'close'; a probe that stripped every
  // listener when it finished left them waiting forever.
  const tcpServer = net.createServer((socket) => socket.on('error', () => {}))
  const tcpPort = await listen(tcpServer, t)
  const h2Server = http2.createServer()
  h2Server.on('stream', (stream) => { stream.respond({ ':status': 200 }); stream.end('ok') })
  const h2Port = await listen(h2Server as unknown as net.Server, t)
  const sockets: net.Socket[] = []
  const onSocket = (message: unknown): void => { sockets.push((message as { socket: net.Socket }).socket) }
  diagnostics.subscribe('net.client.socket', onSocket)
  t.after(() => diagnostics.unsubscribe('net.client.socket', onSocket))
  const closed: Array<Promise<void>> = []
  const watchNew = (): void => {
    for (const s of sockets.splice(0)) closed.push(new Promise((resolve) => s.once('close', () => resolve())))
  }
  const tcp = makeCluster(t, { endpoints: [`127.0.0.1:${tcpPort}`], healthCheck: { tcp: true, ...fast } }, 'tcp')
  const h2 = makeCluster(t, { endpoints: [`127.0.0.1:${h2Port}`], protocol: 'http2', healthCheck: fast }, 'h2')
  const ready = Promise.all([tcp.cluster.ready(), h2.cluster.ready()])
  watchNew()
  await ready
  assert.deepEqual([...tcp.cluster.endpoints(), ...h2.cluster.endpoints()].map(e => e.health), ['healthy', 'healthy'])
  assert.equal(closed.length, 2, 'one socket per check')
  await Promise.all(closed)
})

test('an https endpoint is checked over TLS with the cluster\'s tls options', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'swy-hc-tls-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')
  ], { stdio: 'ignore' })
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
  const server = https.createServer({ key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert }, (_req, res) => { res.end('ok') })
  const port = await listen(server, t)
  const { cluster } = makeCluster(t, { endpoints: [`https://127.0.0.1:${port}`], tls: { ca: cert }, healthCheck: fast })
  await cluster.ready()
  assert.equal(cluster.endpoints()[0]!.health, 'healthy')
  const { cluster: untrusting, stat } = makeCluster(t, { endpoints: [`https://127.0.0.1:${port}`], healthCheck: fast }, 'untrusting')
  await untrusting.ready()
  assert.equal(untrusting.endpoints()[0]!.health, 'unhealthy', 'a self-signed certificate without its ca fails')
  assert.equal(stat('health_check.network_failure'), 1)
})

const faults: Array<[string, (socket: net.Socket) => void]> = [
  ['answers garbage', (socket) => { socket.end('GARBAGE garbage\r\n\r\n') }],
  ['never answers', () => {}],
  ['resets the connection', (socket) => { socket.resetAndDestroy() }],
  ['closes before the end of its answer', (socket) => { socket.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort') }]
]

for (const [what, behave] of faults) {
  test(`an endpoint that ${what} fails its checks as a network failure, crashes nothing and leaves no handle`, async (t) => {
    const baseline = handles()
    const open = new Set<net.Socket>()
    let most = 0
    const server = net.createServer((socket) => {
      open.add(socket)
      most = Math.max(most, open.size)
      socket.on('close', () => open.delete(socket))
      socket.on('error', () => {})
      socket.once('data', () => behave(socket))
    })
    const port = await listen(server)
    const { cluster, stat } = makeCluster(t, { endpoints: [`127.0.0.1:${port}`], healthCheck: fast })
    await cluster.ready()
    assert.equal(cluster.endpoints()[0]!.health, 'unhealthy')
    // A few more rounds: each check's socket is gone before the next one opens.
    for (let i = 0; i < 3; i++) await next(cluster, 'healthChecked')
    assert.ok(stat('health_check.failure') >= 4)
    assert.equal(stat('health_check.network_failure'), stat('health_check.failure'))
    assert.equal(stat('health_check.success'), 0)
    assert.ok(most <= 2, `at most one check open at a time (saw ${most} sockets at once)`)
    cluster.close()
    for (const socket of open) socket.destroy()
    await new Promise<void>((resolve) => { server.close(() => resolve()) })
    await backToBaseline(baseline)
  })
}

test('ready() is bounded by the check timeout when an endpoint never answers', async (t) => {
  // Reads (so that it sees the check's socket go) but never writes a byte.
  const server = net.createServer((socket) => { socket.on('error', () => {}).resume() })
  const port = await listen(server, t)
  const { cluster } = makeCluster(t, { endpoints: [`127.0.0.1:${port}`], healthCheck: { interval: 200, timeout: 150 } })
  await cluster.ready()
  assert.equal(cluster.endpoints()[0]!.health, 'unhealthy')
})

test('an endpoint added at runtime takes traffic only after its first passing check', async (t) => {
  const a = await healthServer(t)
  const b = await healthServer(t)
  const { cluster } = makeCluster(t, { endpoints: [`127.0.0.1:${a.port}`], healthCheck: fast })
  await cluster.ready()
  cluster.setEndpoints([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`])
  assert.deepEqual(cluster.endpoints().map(e => e.health), ['healthy', 'pending'])
  for (let i = 0; i < 20; i++) assert.equal(cluster.chooseHost()!.address, `127.0.0.1:${a.port}`)
  await next<[Host, string]>(cluster, 'health', (host) => host.address === `127.0.0.1:${b.port}`)
  const seen = new Set<string>()
  for (let i = 0; i < 20; i++) seen.add(cluster.chooseHost()!.address)
  assert.equal(seen.size, 2)
})
