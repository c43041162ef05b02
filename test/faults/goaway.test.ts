import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http2 from 'node:http2'
import { rawClient, wsUpgradeHead, type RawClient } from '../helpers/raw-client.ts'
import { startNode } from '../helpers/h2-mesh.ts'
import { gaugesAtZero, watchHandles, type HandleWatch } from '../helpers/leak-check.ts'
import { listen } from '../helpers/net.ts'

/**
 * A bare node:http2 server in the sidecar's place: answers every extended CONNECT with 200 and echoes
 * the stream. `onStream` may take a stream over instead (return true).
 */
async function h2Peer (t: TestContext, onStream: (stream: http2.ServerHttp2Stream, session: http2.ServerHttp2Session) => boolean) {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } })
  const sessions: http2.ServerHttp2Session[] = []
  server.on('session', (s) => { sessions.push(s); s.on('error', () => {}) })
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {})
    if (onStream(stream, stream.session as http2.ServerHttp2Session)) return
    assert.equal(headers[':method'], 'CONNECT')
    stream.respond({ ':status': 200 })
    stream.pipe(stream)
  })
  t.after(() => { for (const s of sessions) s.destroy() })
  return { port: await listen(t, server), sessions }
}

/** Waits for every socket but the one HTTP/2 connection still pooled (its two ends), then checks the handles. */
async function pooledConnectionOnly (watch: HandleWatch, peerPort: number): Promise<void> {
  const pooled = new Set(watch.sockets.filter((s) => !s.destroyed && (s.remotePort === peerPort || s.localPort === peerPort)))
  assert.equal(pooled.size, 2, 'one pooled HTTP/2 connection is left')
  await watch.settled({ keep: (s) => pooled.has(s), extra: 2 })
}

async function openTunnel (t: TestContext, port: number, path: string): Promise<RawClient> {
  const client = await rawClient(t, port, wsUpgradeHead(path))
  assert.equal((await client.head()).status, 101)
  return client
}

async function echoes (client: RawClient, text: string): Promise<void> {
  client.socket.write(text)
  await client.until((d) => d.includes(text))
}

// RFC 9113 §6.8: after GOAWAY the streams up to its last-stream-id may finish; a stream above it was
// never processed and may be retried on a new connection (the pool retries once: REFUSED_STREAM).
test('a GOAWAY from the peer lets the open tunnel finish and moves a refused new one to a fresh connection', { timeout: 10_000 }, async (t) => {
  const watch = watchHandles()
  let goawayNext = false
  const peer = await h2Peer(t, (stream, session) => {
    if (!goawayNext) return false
    goawayNext = false
    // This stream arrived in the same moment as the GOAWAY: above its last-stream-id, so never processed.
    session.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id! - 2)
    return true
  })
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${peer.port}`, upstreamProtocol: 'http2' })
  await watch.mark()

  const open = await openTunnel(t, front.port, '/open')
  await echoes(open, 'before')
  goawayNext = true
  const moved = await openTunnel(t, front.port, '/moved')
  await echoes(moved, 'on the new connection')
  await echoes(open, 'after the goaway')
  assert.equal(peer.sessions.length, 2)

  const firstGone = once(peer.sessions[0]!, 'close')
  open.socket.end()
  await open.done
  await firstGone
  moved.socket.end()
  await moved.done

  await pooledConnectionOnly(watch, peer.port)
  await gaugesAtZero([front.app])
})

test('a GOAWAY with an error code closes every open tunnel on that connection and frees everything', { timeout: 10_000 }, async (t) => {
  const watch = watchHandles()
  const peer = await h2Peer(t, () => false)
  const front = await startNode(t, { listen: 'http1', upstream: `127.0.0.1:${peer.port}`, upstreamProtocol: 'http2' })
  await watch.mark()

  const clients = [await openTunnel(t, front.port, '/a'), await openTunnel(t, front.port, '/b'), await openTunnel(t, front.port, '/c')]
  for (const c of clients) await echoes(c, 'hi')
  const firstGone = once(peer.sessions[0]!, 'close')
  peer.sessions[0]!.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR)
  await Promise.all(clients.map((c) => c.done))
  for (const c of clients) c.socket.end()

  const next = await openTunnel(t, front.port, '/next')
  await echoes(next, 'on a new connection')
  next.socket.end()
  await next.done
  assert.equal(peer.sessions.length, 2)

  await firstGone
  await pooledConnectionOnly(watch, peer.port)
  await gaugesAtZero([front.app])
})
