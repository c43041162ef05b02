import { test } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { rawClient, type RawClient } from '../helpers/raw-client.ts'
import { watchHandles } from '../helpers/leak-check.ts'
import { stat } from '../helpers/start-proxy.ts'
import { h2Session, startNode } from '../helpers/h2-mesh.ts'
import { BIG, closesWithin, GRACE, startEdgeFront, startWatchedEdgeFront, wsHead, type EdgeFront } from '../helpers/edge-front.ts'

/**
 * Slow clients against core's stream timeouts (Envoy's `stream_idle_timeout` and `request_timeout`, here
 * 200 ms): a body that stops, a body that trickles, a client that does not read its response, an upgrade
 * nobody answers, a legacy connection before its pipe opens, and the same over HTTP/2 at a sidecar. Each
 * gets 408 before its response head, or a reset after it, counted; a request body is streamed upstream as
 * it comes (as Envoy does), so the upstream request a timeout cuts short is aborted with it. Each test ends with every socket closed, the live handles at the baseline and
 * `app.close()` within the grace period plus one second. The clients' trickles run on timers: they are
 * the behaviour under test.
 */

const TIMEOUT = 200
const IDLE = 'downstream_rq_idle_timeout'
const REQUEST = 'downstream_rq_timeout'

const edge = startWatchedEdgeFront

/** Writes one byte every `ms` ms until the client has an answer or is gone. */
function trickle (client: RawClient, ms: number): void {
  const timer = setInterval(() => {
    if (client.received.length > 0 || client.socket.destroyed || client.socket.writableEnded) {
      clearInterval(timer)
      return
    }
    client.socket.write('1')
  }, ms)
  client.socket.once('close', () => clearInterval(timer))
}

/** Resolves once `socket` has closed, whatever error it closed with. */
async function closedSocket (socket: Socket): Promise<void> {
  if (!socket.closed) await new Promise((resolve) => socket.once('close', resolve))
}

/** The upstream saw one request head (the body streams behind it) and its connection was closed under it. */
async function abortedUpstream (front: Pick<EdgeFront, 'upstream' | 'upstreamSockets'>): Promise<void> {
  assert.equal(front.upstream.heads.length, 1)
  await closedSocket(front.upstreamSockets[0]!)
}

/** The answer a client got (status, whether the connection is to close, body), then its side ended. */
async function answered (client: RawClient): Promise<{ status: number, close: boolean, body: string }> {
  const head = await client.head()
  client.socket.end()
  await client.closed
  return { status: head.status, close: head.headers.connection === 'close', body: client.received.subarray(head.raw.length).toString('latin1') }
}

test('a proxied POST whose body stops gets 408 at streamIdleTimeout, and the upstream request it was streaming is aborted', { timeout: 10_000 }, async (t) => {
  const front = await edge(t, { streamIdleTimeout: TIMEOUT })
  const client = await rawClient(t, front.port, 'POST /hello HTTP/1.1\r\nHost: f\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":')
  assert.deepEqual(await answered(client), { status: 408, close: true, body: 'stream timeout' })
  assert.equal(stat(front.app, IDLE), 1)
  await abortedUpstream(front)
  await front.settled()
})

test('a proxied GET whose body stops gets 408 at streamIdleTimeout, and the upstream request it was streaming is aborted', { timeout: 10_000 }, async (t) => {
  const front = await edge(t, { streamIdleTimeout: TIMEOUT })
  const client = await rawClient(t, front.port, 'GET /hello HTTP/1.1\r\nHost: f\r\ncontent-length: 100\r\n\r\npart of it')
  assert.deepEqual(await answered(client), { status: 408, close: true, body: 'stream timeout' })
  assert.equal(stat(front.app, IDLE), 1)
  await abortedUpstream(front)
  await front.settled()
})

test('a proxied POST trickling its body gets 408 at requestTimeout, never an idle timeout, and its upstream request is aborted', { timeout: 10_000 }, async (t) => {
  const front = await edge(t, { requestTimeout: TIMEOUT, streamIdleTimeout: 0 })
  const client = await rawClient(t, front.port, 'POST /hello HTTP/1.1\r\nHost: f\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n')
  trickle(client, 20)
  assert.deepEqual(await answered(client), { status: 408, close: true, body: 'request timeout' })
  assert.equal(stat(front.app, REQUEST), 1)
  assert.equal(stat(front.app, IDLE), 0)
  await abortedUpstream(front)
  await front.settled()
})

test('a trickling body is not idle: streamIdleTimeout alone lets it finish and the request is proxied', { timeout: 10_000 }, async (t) => {
  const front = await edge(t, { streamIdleTimeout: TIMEOUT })
  const body = 'x'.repeat(30)
  const client = await rawClient(t, front.port, 'POST /hello HTTP/1.1\r\nHost: f\r\ncontent-type: text/plain\r\ncontent-length: 30\r\nconnection: close\r\n\r\n')
  // Thirty bytes, one every 50 ms: the whole body takes well over the idle timeout.
  let sent = 0
  const timer = setInterval(() => { if (sent < body.length) { client.socket.write(body[sent++]!) } else clearInterval(timer) }, TIMEOUT / 4)
  t.after(() => clearInterval(timer))
  assert.equal((await answered(client)).status, 200)
  assert.equal(stat(front.app, IDLE), 0)
  assert.match(front.upstream.heads[0]!, /^POST \/hello /)
  await front.settled()
})

test('a client that does not read a large proxied response is reset at streamIdleTimeout, and the upstream request is aborted', { timeout: 15_000 }, async (t) => {
  const front = await edge(t, { streamIdleTimeout: TIMEOUT })
  const client = await rawClient(t, front.port, 'GET /big HTTP/1.1\r\nHost: f\r\n\r\n')
  await client.head()
  client.socket.pause()
  // The proxy gave up on the stream: its upstream connection goes.
  await closedSocket(front.upstreamSockets[0]!)
  client.socket.resume()
  await client.done
  client.socket.end()
  // Cut short: the connection is gone before the declared length (Node cannot reset a socket with writes queued).
  assert.ok(client.received.length < BIG, 'the response was cut short')
  assert.equal(stat(front.app, IDLE), 1)
  await front.settled()
})

for (const [name, path] of [['new-style', '/ws-silent'], ['legacy', '/legacy-silent']] as const) {
  test(`a ${name} upgrade nobody answers gets 408 at streamIdleTimeout and its upstream connection goes`, { timeout: 10_000 }, async (t) => {
    const front = await edge(t, { streamIdleTimeout: TIMEOUT })
    const client = await rawClient(t, front.port, wsHead(path))
    assert.deepEqual(await answered(client), { status: 408, close: true, body: 'stream timeout' })
    assert.equal(stat(front.app, IDLE), 1)
    await closedSocket(front.upstreamSockets[0]!)
    await front.settled()
  })

  test(`a ${name} upgrade trickling early bytes nobody answers gets 408 at requestTimeout`, { timeout: 10_000 }, async (t) => {
    const front = await edge(t, { requestTimeout: TIMEOUT })
    const client = await rawClient(t, front.port, wsHead(path))
    trickle(client, 20)
    assert.deepEqual(await answered(client), { status: 408, close: true, body: 'request timeout' })
    assert.equal(stat(front.app, REQUEST), 1)
    assert.equal(stat(front.app, IDLE), 0)
    await front.settled()
  })
}

for (const [name, path] of [['new-style', '/ws-refuse-big'], ['legacy', '/legacy-refuse-big']] as const) {
  test(`a ${name} upgrade whose client does not read the upstream's large refusal is cut off at streamIdleTimeout`, { timeout: 15_000 }, async (t) => {
    const front = await edge(t, { streamIdleTimeout: TIMEOUT })
    const client = await rawClient(t, front.port, wsHead(path))
    assert.equal((await client.head()).status, 426)
    client.socket.pause()
    await closedSocket(front.upstreamSockets[0]!)
    client.socket.resume()
    await client.done
    client.socket.end()
    assert.ok(client.received.length < BIG, 'the refusal was cut short')
    assert.equal(stat(front.app, IDLE), 1)
    await front.settled()
  })
}

test('a client gone in the middle of a large relayed refusal leaves no upstream connection behind, timeouts or not', { timeout: 10_000 }, async (t) => {
  const front = await edge(t, { streamIdleTimeout: 0 })
  const client = await rawClient(t, front.port, wsHead('/ws-refuse-big'))
  assert.equal((await client.head()).status, 426)
  client.socket.destroy()
  await closedSocket(front.upstreamSockets[0]!)
  await front.settled()
})

test('an open tunnel is not a stream the timeouts watch: it outlives a request that timed out after it opened', { timeout: 10_000 }, async (t) => {
  const front = await edge(t, { streamIdleTimeout: TIMEOUT, requestTimeout: TIMEOUT })
  const tunnels: RawClient[] = []
  for (const path of ['/ws', '/legacy']) {
    const tunnel = await rawClient(t, front.port, wsHead(path))
    assert.equal((await tunnel.head()).status, 101)
    tunnels.push(tunnel)
  }
  // Started after both tunnels went quiet, so it times out after they have been idle longer than the timeouts.
  const stalled = await rawClient(t, front.port, 'GET /hello HTTP/1.1\r\nHost: f\r\ncontent-length: 10\r\n\r\n')
  assert.equal((await answered(stalled)).status, 408)
  for (const tunnel of tunnels) {
    const before = tunnel.received.length
    tunnel.socket.write('PING')
    await tunnel.until((d) => d.length >= before + 4)
    assert.equal(tunnel.received.subarray(before).toString(), 'PING')
    tunnel.socket.end()
    await tunnel.done
  }
  assert.equal(stat(front.app, IDLE) + stat(front.app, REQUEST), 1)
  await front.settled()
})

test('a proxied request answered in time leaves nothing armed: its keep-alive connection idles past the timeouts and serves the next one', { timeout: 10_000 }, async (t) => {
  const front = await edge(t, { streamIdleTimeout: TIMEOUT, requestTimeout: TIMEOUT })
  const keepAlive = await rawClient(t, front.port, 'GET /hello HTTP/1.1\r\nHost: f\r\n\r\n')
  const first = await keepAlive.until((d) => d.includes('plain GET /hello'))
  // A request started after the first was answered times out: by then the connection has idled longer than the timeouts.
  const stalled = await rawClient(t, front.port, 'GET /hello HTTP/1.1\r\nHost: f\r\ncontent-length: 10\r\n\r\n')
  assert.equal((await answered(stalled)).status, 408)
  keepAlive.socket.write('GET /hello HTTP/1.1\r\nHost: f\r\nconnection: close\r\n\r\n')
  await keepAlive.done
  const second = keepAlive.received.subarray(first.length).toString('latin1')
  assert.match(second, /^HTTP\/1\.1 200 /)
  keepAlive.socket.end()
  assert.equal(stat(front.app, IDLE) + stat(front.app, REQUEST), 1)
  await front.settled()
})

test('with both timeouts off a stalled body is left alone, and app.close() still ends in bounded time', { timeout: 10_000 }, async (t) => {
  const front = await edge(t, { streamIdleTimeout: 0 })
  const client = await rawClient(t, front.port, 'POST /hello HTTP/1.1\r\nHost: f\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":')
  // Never timed out: the close ends it, after the grace period at the latest.
  const app: FastifyInstance = front.app
  const closing = front.settled()
  await client.done
  client.socket.end()
  assert.doesNotMatch(client.received.toString('latin1'), /^HTTP\/1\.1 408 /)
  assert.equal(stat(app, IDLE), 0)
  await closing
})

/** A sidecar (h2c) with the timeouts, in front of the same kind of upstream. */
async function sidecar (t: Parameters<typeof startEdgeFront>[0], timeouts: { streamIdleTimeout?: number, requestTimeout?: number }): Promise<{ node: Awaited<ReturnType<typeof startNode>>, front: EdgeFront, settled (): Promise<void> }> {
  const front = await startEdgeFront(t)
  const node = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${front.upstream.port}`, upstreamProtocol: 'http1', core: { shutdownGracePeriod: GRACE, ...timeouts } })
  const watch = watchHandles()
  await watch.mark()
  return {
    node,
    front,
    async settled () {
      assert.equal(await closesWithin(node.app, GRACE), true, 'app.close() within the grace period plus one second')
      await watch.settled()
    }
  }
}

async function h2Outcome (stream: http2.ClientHttp2Stream): Promise<{ status: number | null, rstCode: number | undefined }> {
  let status: number | null = null
  stream.on('error', () => {})
  stream.on('response', (h) => { status = Number(h[':status']) })
  await new Promise<void>((resolve) => stream.once('close', resolve))
  return { status, rstCode: stream.rstCode }
}

test('over HTTP/2 a proxied POST whose body stops gets 408 at streamIdleTimeout, and its upstream request is aborted', { timeout: 10_000 }, async (t) => {
  const { node, front, settled } = await sidecar(t, { streamIdleTimeout: TIMEOUT })
  const session = await h2Session(t, node.origin)
  const stream = session.request({ ':method': 'POST', ':path': '/hello', 'content-type': 'text/plain', 'content-length': '100' }, { endStream: false })
  stream.write('part of it')
  stream.resume()
  const outcome = h2Outcome(stream)
  await once(stream, 'response')
  stream.close(http2.constants.NGHTTP2_NO_ERROR)
  assert.equal((await outcome).status, 408)
  assert.equal(stat(node.app, IDLE), 1)
  await abortedUpstream(front)
  session.close()
  await settled()
})

test('over HTTP/2 a client that does not read a large proxied response has its stream reset at streamIdleTimeout', { timeout: 15_000 }, async (t) => {
  const { node, settled } = await sidecar(t, { streamIdleTimeout: TIMEOUT })
  const session = await h2Session(t, node.origin)
  const stream = session.request({ ':path': '/big' })
  stream.pause()
  const outcome = await h2Outcome(stream)
  assert.deepEqual(outcome, { status: 200, rstCode: http2.constants.NGHTTP2_CANCEL })
  assert.equal(stat(node.app, IDLE), 1)
  session.close()
  await settled()
})

test('over HTTP/2 an extended CONNECT nobody answers gets 408 at streamIdleTimeout', { timeout: 10_000 }, async (t) => {
  const { node, settled } = await sidecar(t, { streamIdleTimeout: TIMEOUT })
  const session = await h2Session(t, node.origin)
  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'foo', ':scheme': 'http', ':path': '/silent', ':authority': 'sidecar.test' }, { endStream: false })
  stream.resume()
  const outcome = await h2Outcome(stream)
  assert.equal(outcome.status, 408)
  assert.equal(stat(node.app, IDLE), 1)
  session.close()
  await settled()
})
