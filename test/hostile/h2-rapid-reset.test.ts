import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http2 from 'node:http2'
import { rapidReset } from '../helpers/h2-flood.ts'
import { h2Session, startEchoApp, startNode } from '../helpers/h2-mesh.ts'
import { watchHandles } from '../helpers/leak-check.ts'

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_CANCEL } = http2.constants
const STREAMS = 25_000
const MiB = 1024 * 1024

async function get (session: http2.ClientHttp2Session, path: string): Promise<number> {
  const stream = session.request({ ':path': path })
  stream.resume()
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  await once(stream, 'close')
  return Number(headers[':status'])
}

test('advertises SETTINGS_MAX_CONCURRENT_STREAMS 100 by default, and the maxConcurrentStreams option instead', async (t) => {
  const app = await startEchoApp(t)
  const byDefault = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${app.port}`, upstreamProtocol: 'http1' })
  const limited = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${app.port}`, upstreamProtocol: 'http1', plugin: { maxConcurrentStreams: 7 } })
  assert.equal((await h2Session(t, byDefault.origin)).remoteSettings.maxConcurrentStreams, 100)
  assert.equal((await h2Session(t, limited.origin)).remoteSettings.maxConcurrentStreams, 7)
})

// CVE-2023-44487: HEADERS and RST_STREAM back to back cost the server a stream each and the client
// nothing. Envoy's rule: half of the first 500 streams reset before any answer within a second, and the
// connection is sent away.
test(`sends GOAWAY ENHANCE_YOUR_CALM to each of 2 connections flooding ${STREAMS} HEADERS + RST_STREAM on plain GETs, and keeps serving`, { timeout: 120_000 }, async (t) => {
  const app = await startEchoApp(t)
  const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${app.port}`, upstreamProtocol: 'http1' })
  const watch = watchHandles()
  await watch.mark()
  const rssBefore = process.memoryUsage().rss

  const outcomes = await Promise.all([rapidReset(sidecar.port, STREAMS, '/plain'), rapidReset(sidecar.port, STREAMS, '/plain')])
  for (const outcome of outcomes) {
    assert.equal(outcome.goaway, NGHTTP2_ENHANCE_YOUR_CALM, `GOAWAY code; got ${JSON.stringify(outcome)}`)
    assert.ok(outcome.sent < STREAMS, `the GOAWAY stopped the flood; got ${JSON.stringify(outcome)}`)
  }
  assert.equal(sidecar.app.switchyard.stats().downstream_rq_too_many_premature_resets, 2)

  // Still serving, on a new connection.
  const session = http2.connect(sidecar.origin)
  session.on('error', () => {})
  assert.equal(await get(session, '/after'), 200)
  session.close()
  await once(session, 'close')

  // Every socket of the flood, and every upstream connection it caused, closes; memory comes back down.
  await watch.settled()
  const grown = process.memoryUsage().rss - rssBefore
  t.diagnostic(`flood: ${outcomes.map((o) => o.sent).join(' + ')} pairs sent before the GOAWAYs; RSS ${(grown / MiB).toFixed(1)} MiB above the start`)
  assert.ok(grown < 64 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`)
})

test('does not send away a client that cancels some of its streams and completes the rest', async (t) => {
  const app = await startEchoApp(t)
  const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${app.port}`, upstreamProtocol: 'http1' })
  const session = await h2Session(t, sidecar.origin)
  let goaway: number | null = null
  session.on('goaway', (code: number) => { goaway = code })
  for (let round = 0; round < 3; round++) {
    // 80 cancelled before any answer (240 in all, under Envoy's 250), 40 completed, per round.
    const cancelled = Array.from({ length: 80 }, () => {
      const stream = session.request({ ':path': '/cancelled' })
      stream.on('error', () => {})
      stream.close(NGHTTP2_CANCEL)
      return once(stream, 'close')
    })
    const statuses = await Promise.all(Array.from({ length: 40 }, async () => get(session, '/completed')))
    await Promise.all(cancelled)
    assert.deepEqual(new Set(statuses), new Set([200]))
  }
  assert.equal(goaway, null)
  assert.equal(await get(session, '/still'), 200)
  assert.equal(sidecar.app.switchyard.stats().downstream_rq_too_many_premature_resets ?? 0, 0)
})
