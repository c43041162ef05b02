import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import http2 from 'node:http2'
import type { Http2ServerRequest } from 'node:http2'
import { h2Session, startNode } from '../helpers/h2-mesh.ts'
import { listen } from '../helpers/net.ts'
import { nextTunnelClose, stat } from '../helpers/start-proxy.ts'

/**
 * DESIGN, hostile traffic: "A stream reset before its upstream request is sent opens no upstream
 * connection." An extended CONNECT reset by its client while an async `onRequest` hook holds it reaches
 * the route with its stream already closed: it must end there, not open an upstream connection and hold
 * the gauges and breaker slots of a stream nobody can end.
 */
test('an extended CONNECT reset while a hook holds it opens no upstream connection and leaves no gauge up', { timeout: 10_000 }, async (t) => {
  let connections = 0
  const upstream = net.createServer((socket) => { connections++; socket.on('error', () => {}) })
  const upstreamPort = await listen(t, upstream)
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  let hookReached!: (stream: http2.ServerHttp2Stream) => void
  const reached = new Promise<http2.ServerHttp2Stream>((resolve) => { hookReached = resolve })
  const node = await startNode(t, {
    listen: 'h2c',
    upstream: `127.0.0.1:${upstreamPort}`,
    upstreamProtocol: 'http1',
    routes: (app) => {
      app.addHook('onRequest', async (request) => {
        hookReached((request.raw as unknown as Http2ServerRequest).stream)
        await held
      })
    }
  })
  const session = await h2Session(t, node.origin)
  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'foo', ':path': '/tunnel', ':scheme': 'http', ':authority': 'mesh.test' })
  stream.on('error', () => {})
  const serverStream = await reached
  const serverClosed = once(serverStream, 'close')
  stream.close(http2.constants.NGHTTP2_CANCEL)
  await serverClosed

  const closed = nextTunnelClose()
  release()
  await closed
  assert.equal(stat(node.app, 'cluster.mesh.upstream_cx_total'), 0, 'no upstream connection was opened')
  assert.equal(stat(node.app, 'cluster.mesh.upstream_rq_active'), 0)
  assert.equal(stat(node.app, 'downstream_cx_upgrades_active'), 0)
  assert.equal(connections, 0)
})
