import { test } from 'node:test'
import assert from 'node:assert/strict'
import type net from 'node:net'
import { proxy } from '@switchyard/core'
import { startProxy, cluster } from '../helpers/start-proxy.ts'
import { rawUpstream, finished, isUpgradeHead, answerPlain } from '../helpers/echo-upstream.ts'
import { rawClient, upgradeHead, parseHead } from '../helpers/raw-client.ts'

/** An upstream answering every upgrade with `response` (keeping its connection open, as a keep-alive server would). */
async function answering (t: Parameters<typeof rawUpstream>[0], response: string) {
  const sockets: net.Socket[] = []
  const upstream = await rawUpstream(t, (conn) => {
    if (!isUpgradeHead(conn.head)) { answerPlain(conn); return }
    sockets.push(conn.socket)
    conn.socket.write(response)
  })
  return { upstream, sockets }
}

for (const [status, reason] of [[426, 'Upgrade Required'], [401, 'Unauthorized'], [503, 'Service Unavailable']] as const) {
  test(`relays a ${status} from the upstream and never tunnels`, async (t) => {
    const body = `no upgrade for you (${status})`
    const { upstream, sockets } = await answering(t, `HTTP/1.1 ${status} ${reason}\r\nx-upstream: yes\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
    const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
      app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
    })
    const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
    const head = await client.headAnd(body.length)
    assert.equal(head.status, status)
    assert.equal(head.headers['x-upstream'], 'yes')
    assert.equal(head.rest.toString(), body)
    client.socket.write('after the answer')
    await client.done
    await finished(sockets[0]!)
    assert.equal(upstream.after.get(0), undefined, 'client bytes were tunnelled after a non-101')
    assert.equal(parseHead(client.received)!.rest.toString(), body)
  })
}

for (const [status, extra] of [[200, 'x-kind: ok\r\n'], [302, 'location: /elsewhere\r\n'], [204, 'x-kind: none\r\n']] as const) {
  test(`relays a ${status} to an upgrade with the same status and headers, then closes both connections`, async (t) => {
    const body = status === 204 ? '' : 'upstream body'
    const { upstream, sockets } = await answering(t, `HTTP/1.1 ${status} Whatever\r\n${extra}${status === 204 ? '' : `content-length: ${body.length}\r\n`}\r\n${body}`)
    const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
      app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
    })
    const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
    const head = await client.head()
    assert.equal(head.status, status)
    const [name, value] = extra.trim().split(': ') as [string, string]
    assert.equal(head.headers[name], value)
    await client.done
    await finished(sockets[0]!)
    assert.equal(parseHead(client.received)!.rest.toString(), body)
  })
}

test('never reuses an upstream connection that answered an upgrade', async (t) => {
  const { upstream, sockets } = await answering(t, 'HTTP/1.1 426 Upgrade Required\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n')
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const first = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  assert.equal((await first.head()).status, 426)
  await finished(sockets[0]!)
  const second = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  assert.equal((await second.head()).status, 426)
  const plain = await fetch(`http://127.0.0.1:${port}/foo`)
  assert.equal(await plain.text(), 'plain GET /foo')
  assert.equal(upstream.connections, 3)
  // Each connection carried exactly one request head.
  for (const [i, head] of upstream.heads.entries()) assert.ok(head.startsWith('GET /foo '), `connection ${i}: ${head}`)
  assert.equal(upstream.after.size, 0, 'a later request was written on a used connection')
})

test('relays the 101 with no Content-Length or Transfer-Encoding even when the upstream adds them', async (t) => {
  const upstream = await rawUpstream(t, (conn) => {
    conn.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n')
    conn.socket.on('data', (d: Buffer) => conn.socket.write(d))
  })
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  client.socket.write('0\r\n\r\n')
  const head = await client.headAnd(5)
  assert.equal(head.status, 101)
  assert.equal(head.headers['content-length'], undefined)
  assert.equal(head.headers['transfer-encoding'], undefined)
  assert.equal(head.rest.toString(), '0\r\n\r\n')
})

test('relays a refused upgrade\'s status line before any of its body arrives', async (t) => {
  // The upstream sends only the head of a chunked 500 and then nothing: the client must see the status
  // at once (Envoy relays headers as they come), not when the first body byte shows up.
  const { upstream, sockets } = await answering(t, 'HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\nx-upstream: yes\r\n\r\n')
  const { port } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
  const head = await client.head()
  assert.equal(head.status, 500)
  assert.equal(head.headers['x-upstream'], 'yes')
  // Now the body, and the end of it.
  sockets[0]!.write('4\r\nbody\r\n0\r\n\r\n')
  await client.done
  assert.match(client.received.toString('latin1'), /\r\n\r\n4\r\nbody\r\n0\r\n\r\n$/)
})

for (const [status, destroyed] of [[500, 0], [404, 0], [200, 1]] as const) {
  test(`counts upstream_cx_destroy ${destroyed} for a ${status} answer to an upgrade (4xx/5xx are ordinary responses)`, async (t) => {
    const { upstream, sockets } = await answering(t, `HTTP/1.1 ${status} Whatever\r\ncontent-length: 0\r\n\r\n`)
    const { port, app } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo' }] }, (app) => {
      app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
    })
    const client = await rawClient(t, port, upgradeHead('/foo', 'foo'))
    assert.equal((await client.head()).status, status)
    await client.done
    await finished(sockets[0]!)
    assert.equal(app.switchyard.stats()['cluster.foo.upstream_cx_destroy'] ?? 0, destroyed)
    assert.equal(app.switchyard.stats()['cluster.foo.upstream_cx_active'] ?? 0, 0)
  })
}
