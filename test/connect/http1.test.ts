import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http from 'node:http'
import type net from 'node:net'
import { proxy, FilterStatus, type Filter } from '@switchyard/core'
import { createAccessLogFilter, type AccessLogLine } from '@switchyard/filters'
import { startProxy, cluster, stat, nextTunnelClose } from '../helpers/start-proxy.ts'
import { listen, freePort } from '../helpers/net.ts'
import { rawClient, parseHead } from '../helpers/raw-client.ts'
import { rawUpstream, headerOf } from '../helpers/echo-upstream.ts'
import { watchProxySockets, heldBetween, flood } from '../helpers/flood.ts'
import { tcpEcho, connectVia, readBytes, curl } from '../helpers/connect.ts'
import { havePeers } from '../helpers/peers.ts'

const CONNECT_ON = { upgradeConfigs: [{ upgradeType: 'CONNECT' }] }

test('a terminated CONNECT answers 200 Connection Established and tunnels both ways to the route\'s cluster', async (t) => {
  const echo = await tcpEcho(t)
  const { port, app } = await startProxy(t, { clusters: { egress: cluster(echo.port) }, ...CONNECT_ON }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
  })
  const closed = nextTunnelClose()
  const { res, socket, head } = await connectVia(t, port, 'example.test:443')
  assert.equal(res.statusCode, 200)
  assert.equal(res.statusMessage, 'Connection Established')
  assert.equal(res.headers['content-length'], undefined, 'RFC 9110 §9.3.6: no Content-Length on a 2xx to CONNECT')
  assert.equal(res.headers['transfer-encoding'], undefined)
  socket.write('hello through the tunnel')
  assert.equal((await readBytes(socket, 24, head)).toString(), 'hello through the tunnel')
  // Half-close carried: the echo answers our FIN with its own.
  socket.end()
  await once(socket, 'end')
  const message = await closed
  assert.equal(message.upgradeType, 'connect')
  assert.equal(message.bytesFromDownstream, 24)
  assert.equal(echo.connections, 1)
  assert.equal(stat(app, 'downstream_cx_upgrades_total'), 1)
  assert.equal(stat(app, 'upgrade.connect.downstream_cx_upgrades_total'), 1)
  assert.equal(stat(app, 'downstream_cx_upgrades_active'), 0)
  assert.equal(stat(app, 'cluster.egress.upstream_cx_total'), 1)
})

test('a CONNECT goes only to the route\'s cluster, never to the authority the client named', async (t) => {
  const echo = await tcpEcho(t)
  // Something really listens at the named authority: it must never see a connection.
  const named = await tcpEcho(t)
  const { port } = await startProxy(t, { clusters: { egress: cluster(echo.port) }, ...CONNECT_ON }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
  })
  const { res, socket, head } = await connectVia(t, port, `127.0.0.1:${named.port}`)
  assert.equal(res.statusCode, 200)
  socket.write('where am I')
  assert.equal((await readBytes(socket, 10, head)).toString(), 'where am I')
  assert.equal(named.connections, 0)
  assert.equal(echo.connections, 1)
})

test('curl --proxytunnel reaches an HTTP server through a terminated CONNECT', async (t) => {
  if (!havePeers(t, 'curl')) return
  const origin = http.createServer((req, res) => res.end(`origin saw ${req.method} ${req.url} host=${req.headers.host}`))
  const originPort = await listen(t, origin)
  const { port, app } = await startProxy(t, { clusters: { egress: cluster(originPort) }, ...CONNECT_ON }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
  })
  // `unresolvable.test` does not resolve: curl asks the proxy for it, and the proxy goes to its cluster.
  const out = await curl(['-p', '-x', `http://127.0.0.1:${port}`, 'http://unresolvable.test:8080/hello?x=1'])
  assert.equal(out.code, 0, out.stderr)
  assert.equal(out.stdout, 'origin saw GET /hello?x=1 host=unresolvable.test:8080')
  assert.equal(stat(app, 'upgrade.connect.downstream_cx_upgrades_total'), 1)
})

test('a route url matches one authority literally, and a CONNECT to another gets 404', async (t) => {
  const db = await tcpEcho(t)
  const v6 = await tcpEcho(t)
  const { port } = await startProxy(t, { clusters: { db: cluster(db.port), v6: cluster(v6.port) }, ...CONNECT_ON }, (app) => {
    app.route({ method: 'CONNECT', url: '/db.internal:5432', upstream: { cluster: 'db' }, connectConfig: {}, handler: proxy })
    app.route({ method: 'CONNECT', url: '/[::1]:443', upstream: { cluster: 'v6' }, connectConfig: {}, handler: proxy })
  })
  assert.equal((await connectVia(t, port, 'db.internal:5432')).res.statusCode, 200)
  assert.equal((await connectVia(t, port, '[::1]:443')).res.statusCode, 200)
  assert.equal((await connectVia(t, port, 'db.internal:5433')).res.statusCode, 404)
  assert.equal((await connectVia(t, port, 'other.internal:5432')).res.statusCode, 404)
  assert.equal(db.connections, 1)
  assert.equal(v6.connections, 1)
})

test('CONNECT follows Envoy\'s truth table: off unless listed, 403 and the connection closed', async (t) => {
  const echo = await tcpEcho(t)
  const route = (app: Parameters<Parameters<typeof startProxy>[2]>[0], url: string, upgradeConfigs?: Array<{ upgradeType: string, enabled?: boolean }>): void => {
    app.route({ method: 'CONNECT', url, upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy, ...(upgradeConfigs === undefined ? {} : { upgradeConfigs }) })
  }
  const off = await startProxy(t, { clusters: { egress: cluster(echo.port) } }, (app) => {
    route(app, '/none:1')
    route(app, '/route-on:1', [{ upgradeType: 'connect' }])
  })
  const on = await startProxy(t, { clusters: { egress: cluster(echo.port) }, ...CONNECT_ON }, (app) => {
    route(app, '/plugin-on:1')
    route(app, '/route-off:1', [{ upgradeType: 'CONNECT', enabled: false }])
  })
  const disabled = await startProxy(t, { clusters: { egress: cluster(echo.port) }, upgradeConfigs: [{ upgradeType: 'CONNECT', enabled: false }] }, (app) => {
    route(app, '/plugin-off:1')
    route(app, '/plugin-off-route-on:1', [{ upgradeType: 'CONNECT', enabled: true }])
  })
  const cases: Array<[number, string, number]> = [
    [off.port, 'none:1', 403], [off.port, 'route-on:1', 200],
    [on.port, 'plugin-on:1', 200], [on.port, 'route-off:1', 403],
    [disabled.port, 'plugin-off:1', 403], [disabled.port, 'plugin-off-route-on:1', 200]
  ]
  for (const [port, target, status] of cases) {
    const client = await rawClient(t, port, `CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\nearly`)
    const head = await client.head()
    assert.equal(head.status, status, target)
    if (status === 403) {
      assert.match(head.raw, /\r\nconnection: close\r\n/i)
      await client.done
    }
  }
  assert.equal(stat(off.app, 'downstream_rq_ws_on_non_ws_route'), 1)
  assert.equal(stat(on.app, 'downstream_rq_ws_on_non_ws_route'), 1)
  assert.equal(echo.connections, 3)
})

const badTargets: Array<{ name: string, request: string }> = [
  { name: 'origin-form', request: 'CONNECT /db.internal:5432 HTTP/1.1\r\nhost: x\r\n\r\n' },
  { name: 'absolute-form', request: 'CONNECT http://db.internal:5432 HTTP/1.1\r\nhost: x\r\n\r\n' },
  { name: 'no port', request: 'CONNECT db.internal HTTP/1.1\r\nhost: x\r\n\r\n' },
  { name: 'an empty port', request: 'CONNECT db.internal: HTTP/1.1\r\nhost: x\r\n\r\n' },
  { name: 'port 0', request: 'CONNECT db.internal:0 HTTP/1.1\r\nhost: x\r\n\r\n' },
  { name: 'port 65536', request: 'CONNECT db.internal:65536 HTTP/1.1\r\nhost: x\r\n\r\n' },
  { name: 'userinfo', request: 'CONNECT user:pass@db.internal:5432 HTTP/1.1\r\nhost: x\r\n\r\n' },
  { name: 'an IPv6 address without brackets', request: 'CONNECT ::1:443 HTTP/1.1\r\nhost: x\r\n\r\n' },
  { name: 'a Content-Length', request: 'CONNECT db.internal:5432 HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\nbody' },
  { name: 'Transfer-Encoding', request: 'CONNECT db.internal:5432 HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n' }
]

for (const c of badTargets) {
  test(`a CONNECT with ${c.name} gets 400, reaches no upstream, and the server goes on serving`, async (t) => {
    const echo = await tcpEcho(t)
    const { port, app } = await startProxy(t, { clusters: { egress: cluster(echo.port) }, ...CONNECT_ON }, (app) => {
      app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
    })
    const client = await rawClient(t, port, c.request)
    await client.done
    assert.equal(parseHead(client.received)?.status, 400)
    assert.equal(echo.connections, 0)
    assert.equal(stat(app, 'downstream_cx_upgrades_total'), 0)
    assert.equal((await connectVia(t, port, 'db.internal:5432')).res.statusCode, 200)
  })
}

test('bytes sent before the 200 are held and reach the endpoint after it, in order', async (t) => {
  const echo = await tcpEcho(t)
  const { port } = await startProxy(t, { clusters: { egress: cluster(echo.port) }, ...CONNECT_ON }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
  })
  const client = await rawClient(t, port, 'CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\nearly bytes')
  client.socket.write(' and more')
  const head = await client.headAnd(20)
  assert.equal(head.status, 200)
  assert.match(head.raw, /^HTTP\/1\.1 200 Connection Established\r\n/)
  assert.equal(head.rest.toString(), 'early bytes and more')
})

test('a forwarded CONNECT asks the endpoint for the client\'s target and tunnels on its 200', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    conn.socket.write('HTTP/1.1 200 Connection established\r\nx-upstream-proxy: yes\r\n\r\n')
    if (conn.rest.length > 0) conn.socket.write(conn.rest)
    conn.socket.on('data', (d: Buffer) => conn.socket.write(d))
    conn.socket.on('end', () => conn.socket.end())
  })
  const { port, app } = await startProxy(t, { clusters: { proxies: cluster(upstream.port) }, ...CONNECT_ON }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'proxies' }, handler: proxy })
  })
  const { res, socket, head } = await connectVia(t, port, 'db.internal:5432', { 'proxy-authorization': 'Basic dTpw', 'proxy-connection': 'keep-alive' })
  assert.equal(res.statusCode, 200)
  assert.equal(res.headers['x-upstream-proxy'], 'yes')
  socket.write('ping')
  assert.equal((await readBytes(socket, 4, head)).toString(), 'ping')
  const sent = upstream.heads[0]!
  assert.match(sent, /^CONNECT db\.internal:5432 HTTP\/1\.1\r\n/)
  assert.equal(headerOf(sent, 'host'), 'db.internal:5432')
  assert.equal(headerOf(sent, 'proxy-authorization'), 'Basic dTpw', 'credentials for the next proxy are relayed')
  assert.equal(headerOf(sent, 'proxy-connection'), undefined, 'hop-by-hop fields stay on this hop')
  assert.equal(headerOf(sent, 'connection'), undefined, 'nothing is added to the CONNECT')
  assert.equal(headerOf(sent, 'x-forwarded-for'), '127.0.0.1')
  assert.equal(stat(app, 'upgrade.connect.downstream_cx_upgrades_total'), 1)
})

test('a forwarded CONNECT refused by the endpoint is relayed with its body, and nothing of the client\'s is tunnelled', async (t) => {
  let after = ''
  const upstream = await rawUpstream(t, (conn) => {
    conn.socket.on('data', (d: Buffer) => { after += d.toString() })
    // A chunked body in two writes: the proxy must frame it as HTTP/1.1 does, not pass the bytes through.
    conn.socket.write('HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm="up"\r\ntransfer-encoding: chunked\r\n\r\n5\r\nlogin\r\n')
    conn.socket.write('6\r\n first\r\n0\r\n\r\n')
  })
  const { port, app } = await startProxy(t, { clusters: { proxies: cluster(upstream.port) }, ...CONNECT_ON }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'proxies' }, handler: proxy })
  })
  const client = await rawClient(t, port, 'CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\nearly bytes')
  await client.done
  const head = parseHead(client.received)!
  assert.equal(head.status, 407)
  assert.match(head.raw, /\r\nproxy-authenticate: Basic realm="up"\r\n/i)
  assert.equal(dechunk(head.rest), 'login first')
  assert.equal(upstream.after.get(0), undefined, 'early bytes were sent after a refusal')
  assert.equal(after, '')
  assert.equal(stat(app, 'downstream_cx_upgrades_active'), 0)
})

test('a forwarded CONNECT retries on the next endpoint when the first refuses the connection', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    conn.socket.write('HTTP/1.1 200 OK\r\n\r\n')
    conn.socket.on('data', (d: Buffer) => conn.socket.write(d))
  })
  // Taken while the upstream listens, so the kernel cannot hand the upstream the same port.
  const dead = await freePort()
  const { port, app } = await startProxy(t, {
    clusters: { proxies: { endpoints: [`127.0.0.1:${dead}`, `127.0.0.1:${upstream.port}`], lbPolicy: 'roundRobin' } },
    ...CONNECT_ON
  }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'proxies', retries: { numRetries: 1, retryOn: ['connect-failure'] } }, handler: proxy })
  })
  for (let i = 0; i < 2; i++) {
    const { res, socket, head } = await connectVia(t, port, 'db.internal:5432')
    assert.equal(res.statusCode, 200)
    socket.write(`n${i}`)
    assert.equal((await readBytes(socket, 2, head)).toString(), `n${i}`)
    socket.destroy()
  }
  assert.ok(stat(app, 'cluster.proxies.upstream_rq_retry') >= 1)
})

test('a terminated CONNECT to an endpoint that refuses gets 503 and the connect failure is counted', async (t) => {
  const dead = await freePort()
  const { port, app } = await startProxy(t, { clusters: { egress: cluster(dead) }, ...CONNECT_ON }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
  })
  const client = await rawClient(t, port, 'CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\nheld')
  await client.done
  const head = parseHead(client.received)!
  assert.equal(head.status, 503)
  assert.match(head.rest.toString(), /connection failure/)
  assert.equal(stat(app, 'cluster.egress.upstream_cx_connect_fail'), 1)
})

test('hooks run for a CONNECT: an onRequest hook refuses it without credentials', async (t) => {
  const echo = await tcpEcho(t)
  const { port } = await startProxy(t, { clusters: { egress: cluster(echo.port) }, ...CONNECT_ON }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.method === 'CONNECT' && request.headers['proxy-authorization'] !== 'Bearer ok') {
        await reply.code(407).header('proxy-authenticate', 'Bearer').send()
      }
    })
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
  })
  assert.equal((await connectVia(t, port, 'db.internal:5432')).res.statusCode, 407)
  assert.equal((await connectVia(t, port, 'db.internal:5432', { 'proxy-authorization': 'Bearer ok' })).res.statusCode, 200)
  assert.equal(echo.connections, 1)
})

test('filters see a CONNECT\'s payload with upgradeType connect, and the access log writes it', async (t) => {
  const echo = await tcpEcho(t)
  const lines: AccessLogLine[] = []
  const seen: string[] = []
  const watcher: Filter = {
    name: 'watcher',
    onRequestHeaders (ctx) { seen.push(`headers ${String(ctx.upgradeType)}`) },
    onRequestData (ctx, chunk) { seen.push(`up ${String(ctx.upgradeType)} ${chunk.toString()}`) },
    onResponseHeaders (_ctx, status) { seen.push(`status ${status}`) },
    onResponseData (_ctx, chunk) {
      seen.push(`down ${chunk.toString()}`)
      return chunk.toString() === 'drop me' ? FilterStatus.StopIteration : FilterStatus.Continue
    }
  }
  const access = createAccessLogFilter({ logger: { info: (line) => lines.push(line as AccessLogLine) } })
  const { port } = await startProxy(t, { clusters: { egress: cluster(echo.port) }, ...CONNECT_ON, filters: [access, watcher] }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
  })
  const closed = nextTunnelClose()
  const { socket, head } = await connectVia(t, port, 'db.internal:5432')
  socket.write('drop me')
  await once(echo.sockets[0]!, 'data')
  socket.write('keep me')
  assert.equal((await readBytes(socket, 7, head)).toString(), 'keep me', 'a filter dropped the first echo, the second passed')
  socket.end()
  await closed
  assert.deepEqual(seen.slice(0, 3), ['headers connect', 'status 200', 'up connect drop me'])
  assert.equal(lines.length, 1)
  assert.equal(lines[0]!.method, 'CONNECT')
  assert.equal(lines[0]!.path, '/db.internal:5432')
  assert.equal(lines[0]!.upgradeType, 'connect')
  assert.equal(lines[0]!.status, 200)
  assert.equal(lines[0]!.bytesFromDownstream, 14)
})

test('a CONNECT tunnel holds backpressure: an endpoint that does not read stops the client', async (t) => {
  let endpoint!: net.Socket
  const server = (await import('node:net')).createServer({ allowHalfOpen: true }, (s) => { endpoint = s; s.pause() })
  const endpointPort = await listen(t, server)
  const { port, app } = await startProxy(t, { clusters: { egress: cluster(endpointPort) }, ...CONNECT_ON }, (app) => {
    app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })
  })
  const sockets = watchProxySockets(t, app)
  const client = await rawClient(t, port, 'CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\n')
  assert.equal((await client.head()).status, 200)
  const down = sockets.downstream()
  const up = sockets.upstream(endpointPort)
  let maxHeld = 0
  const result = await flood(client.socket, 256 * 1024 * 1024, () => { maxHeld = Math.max(maxHeld, heldBetween(down, up)) }, down)
  assert.ok(result.stalled, 'the client sent 256 MiB into an endpoint that reads nothing')
  assert.ok(maxHeld <= 4 * 64 * 1024, `the proxy held ${maxHeld} bytes`)
  let received = 0
  endpoint.on('data', (d: Buffer) => { received += d.length })
  endpoint.resume()
  client.socket.end()
  await once(endpoint, 'end')
  assert.equal(received, result.written)
})

/** The body of a chunked HTTP/1.1 message (no trailers). */
function dechunk (data: Buffer): string {
  let text = data.toString('latin1')
  let out = ''
  for (;;) {
    const line = text.indexOf('\r\n')
    const size = parseInt(text.slice(0, line), 16)
    if (size === 0) return out
    out += text.slice(line + 2, line + 2 + size)
    text = text.slice(line + 2 + size + 2)
  }
}
