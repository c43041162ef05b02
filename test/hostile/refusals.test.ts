import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type net from 'node:net'
import type { Server } from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import { proxy } from '@switchyard/core'
import { startProxy, cluster } from '../helpers/start-proxy.ts'
import { createUpgradeEchoServer } from '../helpers/upgrade-echo.ts'
import { connect, listen } from '../helpers/net.ts'
import { requestHead, upgradeHead } from '../helpers/raw-client.ts'

/**
 * Refusals core writes (a CONNECT not enabled: 403, a CONNECT whose target is not host:port: 400, too many
 * headers: 431, an upgrade during a drain: 503) free their socket whatever the client does after the head: here, the worst case
 * of a half-open client that reads the answer and its FIN, sends one more byte, and ends.
 */

/** Every socket the server accepted, and a promise for the moment none is left open. */
function serverSockets (server: Server): { readonly open: number, allClosed (): Promise<void> } {
  const open = new Set<net.Socket>()
  const waiters: Array<() => void> = []
  server.on('connection', (socket: net.Socket) => {
    open.add(socket)
    socket.once('close', () => {
      open.delete(socket)
      if (open.size === 0) for (const w of waiters.splice(0)) w()
    })
  })
  return {
    get open () { return open.size },
    allClosed: () => open.size === 0 ? Promise.resolve() : new Promise((resolve) => { waiters.push(resolve) })
  }
}

/** The reproducer: read the answer and the server's FIN, send `x`, end; resolves with the answer. */
async function halfOpenAfterRefusal (t: Parameters<typeof connect>[0], port: number, request: string): Promise<string> {
  const socket = await connect(t, port, { allowHalfOpen: true })
  let answer = ''
  socket.setEncoding('latin1')
  socket.on('data', (s: string) => { answer += s })
  socket.write(request)
  await once(socket, 'end')
  socket.end('x')
  return answer
}

const CONNECT = 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n'

function manyHeaders (n: number): string {
  const extra: Record<string, string> = {}
  for (let i = 0; i < n; i++) extra[`x-h${i}`] = 'v'
  return upgradeHead('/up', 'foo', extra)
}

for (const [name, request, status] of [
  ['a refused CONNECT', CONNECT, 403],
  ['a CONNECT in origin-form', 'CONNECT /up HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n', 400],
  ['an upgrade with too many headers', manyHeaders(150), 431]
] as const) {
  test(`${name} (${status}) frees its socket when a half-open client sends more after the answer, 20 times over`, async (t) => {
    const echo = createUpgradeEchoServer()
    const upstream = await listen(t, echo)
    const front = await startProxy(t, { clusters: { app: cluster(upstream) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
      app.get('/up', { upstream: { cluster: 'app' } }, proxy)
      // A CONNECT route, CONNECT not enabled: the upgrade-config refusal.
      app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'app' }, handler: proxy })
    })
    const sockets = serverSockets(front.app.server)
    const answers = await Promise.all(Array.from({ length: 20 }, async () => await halfOpenAfterRefusal(t, front.port, request)))
    for (const answer of answers) assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `))
    await sockets.allClosed()
    assert.equal(sockets.open, 0)
  })
}

test('an upgrade during a drain gets 503 and its socket is freed, and app.close() ends within the grace period plus one second', async (t) => {
  const echo = createUpgradeEchoServer()
  const upstream = await listen(t, echo)
  const grace = 300
  const front = await startProxy(t, { clusters: { app: cluster(upstream) }, upgradeConfigs: [{ upgradeType: 'foo' }], shutdownGracePeriod: grace }, (app) => {
    app.get('/up', { upstream: { cluster: 'app' } }, proxy)
  })
  const sockets = serverSockets(front.app.server)
  // An open tunnel keeps the drain going for the whole grace period.
  const tunnel = await connect(t, front.port)
  tunnel.write(upgradeHead('/up', 'foo'))
  await once(tunnel, 'data')
  const closing = front.app.close()
  const refused = await halfOpenAfterRefusal(t, front.port, upgradeHead('/up', 'foo'))
  assert.match(refused, /^HTTP\/1\.1 503 /)
  const bound = delay(grace + 1000 + 500, 'late')
  assert.equal(await Promise.race([closing.then(() => 'closed'), bound]), 'closed')
  await sockets.allClosed()
})

test('app.close() ends within one second of the grace period while a client trickles a request body and another never reads', async (t) => {
  const upstream = await listen(t, createUpgradeEchoServer())
  const front = await startProxy(t, { clusters: { app: cluster(upstream) } }, (app) => {
    app.post('/slow', { upstream: { cluster: 'app' } }, proxy)
    app.get('/big', async () => 'x'.repeat(8 * 1024 * 1024))
  })
  const sockets = serverSockets(front.app.server)
  let requests = 0
  const bothArrived = new Promise<void>((resolve) => front.app.server.on('request', () => { if (++requests === 2) resolve() }))
  // A body that will never be complete.
  const slow = await connect(t, front.port, { allowHalfOpen: true })
  slow.on('error', () => {})
  slow.write(requestHead('POST', '/slow', { host: 'x', 'content-type': 'application/json', 'content-length': 1000 }) + '{"a":')
  // A response that is never read.
  const stuck = await connect(t, front.port, { allowHalfOpen: true })
  stuck.on('error', () => {})
  stuck.pause()
  stuck.write(requestHead('GET', '/big', { host: 'x' }))
  await bothArrived
  const bound = delay(1000 + 500, 'late')
  assert.equal(await Promise.race([front.app.close().then(() => 'closed'), bound]), 'closed')
  await sockets.allClosed()
})
