import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http2 from 'node:http2'
import type net from 'node:net'
import { startNode } from '../helpers/h2-mesh.ts'
import { listen } from '../helpers/net.ts'
import { rawClient } from '../helpers/raw-client.ts'

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR } = http2.constants

interface FakeSidecar {
  port: number
  /** Sessions accepted, in order, each with the extended CONNECT streams it received. */
  sessions: Array<{ session: http2.ServerHttp2Session, streams: number }>
}

/**
 * An HTTP/2 peer accepting RFC 8441: the streams `refuse` picks are reset with its code before any answer,
 * the others get 200 and echo.
 */
async function fakeSidecar (t: TestContext, refuse: (n: number) => number | undefined): Promise<FakeSidecar> {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } })
  const sessions: FakeSidecar['sessions'] = []
  let n = 0
  server.on('session', (session) => {
    sessions.push({ session, streams: 0 })
    t.after(() => session.destroy())
  })
  server.on('stream', (stream) => {
    stream.on('error', () => {})
    sessions.find((s) => s.session === stream.session)!.streams++
    const code = refuse(n++)
    if (code !== undefined) { stream.close(code); return }
    stream.respond({ ':status': 200 })
    stream.pipe(stream)
  })
  const port = await listen(t, server as unknown as net.Server)
  return { port, sessions }
}

async function upgradeFoo (t: TestContext, port: number): Promise<{ status: number, echo: () => Promise<string> }> {
  const client = await rawClient(t, port, 'GET /raw HTTP/1.1\r\nHost: mesh.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n')
  const head = await client.head()
  return {
    status: head.status,
    echo: async () => {
      client.socket.write('ping')
      const got = await client.until((d) => d.subarray(d.indexOf('\r\n\r\n') + 4).includes('ping'))
      return got.subarray(got.indexOf('\r\n\r\n') + 4).toString()
    }
  }
}

const refusals: Array<[string, number]> = [['REFUSED_STREAM', NGHTTP2_REFUSED_STREAM], ['ENHANCE_YOUR_CALM', NGHTTP2_ENHANCE_YOUR_CALM]]
for (const [name, code] of refusals) {
  test(`retries an upgrade refused with ${name} once on a fresh connection and retires the one that refused it`, async (t) => {
    const sidecar = await fakeSidecar(t, (n) => n === 0 ? code : undefined)
    const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${sidecar.port}`, upstreamProtocol: 'http2' })

    const first = await upgradeFoo(t, front.port)
    assert.equal(first.status, 101)
    assert.equal(await first.echo(), 'ping')
    assert.equal(sidecar.sessions.length, 2, 'the retry went to a new connection')
    // The refusing connection had nothing else open: the front closes it.
    if (!sidecar.sessions[0]!.session.closed) await once(sidecar.sessions[0]!.session, 'close')

    const second = await upgradeFoo(t, front.port)
    assert.equal(second.status, 101)
    assert.deepEqual(sidecar.sessions.map((s) => s.streams), [1, 2], 'no stream went to the retired connection')
    const stats = front.app.switchyard.stats()
    assert.equal(stats['cluster.mesh.upstream_rq_retry'], 1)
    assert.equal(stats['cluster.mesh.upstream_cx_destroy_remote_with_active_rq'], 1)
  })
}

test('keeps a tunnel open on a connection retired after a reset before an answer, and sends the reset upgrade nowhere else', async (t) => {
  const sidecar = await fakeSidecar(t, (n) => n === 1 ? NGHTTP2_INTERNAL_ERROR : undefined)
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${sidecar.port}`, upstreamProtocol: 'http2' })

  const open = await upgradeFoo(t, front.port)
  assert.equal(open.status, 101)
  // Reset with INTERNAL_ERROR: the peer may have processed it, so it is not sent again.
  const reset = await upgradeFoo(t, front.port)
  assert.ok(reset.status >= 500, `a 5xx for the reset upgrade; got ${reset.status}`)
  assert.equal(front.app.switchyard.stats()['cluster.mesh.upstream_rq_retry'] ?? 0, 0)

  assert.equal(await open.echo(), 'ping', 'the tunnel on the retired connection still works')
  const next = await upgradeFoo(t, front.port)
  assert.equal(next.status, 101)
  assert.deepEqual(sidecar.sessions.map((s) => s.streams), [2, 1], 'the next upgrade went to a new connection')
  assert.equal(sidecar.sessions[0]!.session.closed, false, 'the retired connection stays while its tunnel is open')
})
