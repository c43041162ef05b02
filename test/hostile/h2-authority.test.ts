import { test } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { rawUpgradeEcho, headerOf } from '../helpers/echo-upstream.ts'
import { h2Session, startNode } from '../helpers/h2-mesh.ts'
import { watchHandles } from '../helpers/leak-check.ts'
import { stat } from '../helpers/start-proxy.ts'
import { closesWithin } from '../helpers/edge-front.ts'

/**
 * An HTTP/2 sidecar (h2c Fastify with @switchyard/h2-connect) given a malformed `:authority`: one with
 * userinfo, an unbalanced bracket, over 255 characters, or a `host` that names another host. nghttp2
 * checks only its characters, and the value would become the Host of the app's request. RFC 9113 §8.3.1:
 * such a request is malformed, a stream error PROTOCOL_ERROR; the app never sees it, on an extended
 * CONNECT and on a plain request alike. Each test ends with every socket closed, the live handles at the
 * baseline and `app.close()` within the grace period plus one second.
 */

const GRACE = 100
const PROTOCOL_ERROR = http2.constants.NGHTTP2_PROTOCOL_ERROR

const malformed: Array<[string, http2.OutgoingHttpHeaders]> = [
  ['userinfo', { ':authority': 'user:pw@sidecar.test' }],
  ['an unbalanced bracket', { ':authority': '[::1' }],
  ['over 255 characters', { ':authority': 'a'.repeat(256) }],
  ['a host header naming another host', { ':authority': 'sidecar.test', host: 'other.test' }]
]

interface Outcome { status: number | null, rstCode: number | undefined }

async function send (session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<Outcome> {
  const stream = session.request(headers, { endStream: headers[':method'] !== 'CONNECT' })
  stream.on('error', () => {})
  let status: number | null = null
  stream.on('response', (h) => { status = Number(h[':status']) })
  stream.resume()
  // An accepted tunnel is ended from this side once its answer is in.
  stream.once('response', () => { if (headers[':method'] === 'CONNECT') stream.end() })
  await new Promise<void>((resolve) => stream.once('close', resolve))
  return { status, rstCode: stream.rstCode }
}

const forms: Array<[string, http2.OutgoingHttpHeaders, number]> = [
  ['an extended CONNECT', { ':method': 'CONNECT', ':protocol': 'foo', ':scheme': 'http', ':path': '/tunnel' }, 200],
  ['a plain GET', { ':method': 'GET', ':scheme': 'http', ':path': '/plain' }, 200]
]

for (const [form, base, okStatus] of forms) {
  test(`${form} with a malformed :authority is reset with PROTOCOL_ERROR, counted, and never reaches the app`, { timeout: 10_000 }, async (t) => {
    const app = await rawUpgradeEcho(t)
    const sidecar = await startNode(t, { listen: 'h2c', upstream: `127.0.0.1:${app.port}`, upstreamProtocol: 'http1', core: { shutdownGracePeriod: GRACE } })
    const watch = watchHandles()
    await watch.mark()
    const session = await h2Session(t, sidecar.origin)
    for (const [name, headers] of malformed) {
      const outcome = await send(session, { ...base, ':authority': 'sidecar.test', ...headers })
      assert.deepEqual(outcome, { status: null, rstCode: PROTOCOL_ERROR }, name)
    }
    assert.equal(stat(sidecar.app, 'downstream_rq_invalid_authority'), malformed.length)
    assert.equal(app.connections, 0, 'the app never saw a connection')
    // The session is not at fault: a well-formed stream on it is served, its authority forwarded as the Host.
    const ok = await send(session, { ...base, ':authority': '[::1]:8080' })
    assert.equal(ok.status, okStatus)
    assert.equal(headerOf(app.heads.at(-1)!, 'host'), '[::1]:8080')
    session.close()
    assert.equal(await closesWithin(sidecar.app, GRACE), true, 'app.close() within the grace period plus one second')
    await watch.settled()
  })
}
