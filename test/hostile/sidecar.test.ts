import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import net from 'node:net'
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import h2Connect from '@switchyard/h2-connect'
import { gaugesSettled, rawH2Stream, scriptedUpstream, type ScriptedUpstream } from '../helpers/hostile.ts'

/**
 * Hostile inputs against a sidecar (an h2c Fastify server with @switchyard/h2-connect, HTTP/1.1 to a
 * scripted app) driven by node:http2 client sessions. Each case states the exact `:status` the
 * stream gets (null: none) and the RST_STREAM code it ends with (0 NO_ERROR, 8 CANCEL…; null when it
 * ends cleanly or with an answer only). Afterwards a new stream on the same session (when the session is
 * still up) and on a new session is served, and no upgrade is left active.
 */
let app: FastifyInstance
let upstream: ScriptedUpstream
let origin: string

before(async () => {
  upstream = await scriptedUpstream()
  app = Fastify({ http2: true, forceCloseConnections: true }) as unknown as FastifyInstance
  await app.register(switchyard, {
    clusters: { app: { endpoints: [`127.0.0.1:${upstream.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo' }],
    maxRequestHeaders: 100
  })
  await app.register(h2Connect)
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers['x-deny'] !== undefined) await reply.code(401).send()
  })
  app.route({ method: ['GET', 'POST'], url: '/ws/*', upstream: { cluster: 'app', timeout: 300 }, handler: proxy })
  app.get('/off/*', { upstream: { cluster: 'app' }, upgradeConfigs: [{ upgradeType: 'websocket', enabled: false }] }, proxy)
  app.get('/plain', async () => 'plain')
  // CONNECT is not enabled (no upgradeConfigs entry anywhere): a plain CONNECT matching it gets 403.
  app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'app' }, handler: proxy })
  await app.listen({ port: 0, host: '127.0.0.1' })
  origin = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`
})

after(async () => {
  await app.close()
  await upstream.close()
})

/** A step of a case: a DATA write, `END` (END_STREAM), `AWAIT_RESPONSE`, `CANCEL` (RST_STREAM CANCEL), `DROP` (the session's socket destroyed). */
type Step = string | 'END' | 'AWAIT_RESPONSE' | 'CANCEL' | 'DROP'

interface Exchange {
  status: number | null
  headers: http2.IncomingHttpHeaders
  data: string
  rstCode: number | null
  /** A synchronous refusal by Node's client (the frame was never sent). */
  refused?: string
}

async function exchange (session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, steps: Step[]): Promise<Exchange> {
  let stream: http2.ClientHttp2Stream
  try {
    stream = session.request(headers, { endStream: false })
  } catch (err) {
    return { status: null, headers: {}, data: '', rstCode: null, refused: (err as { code?: string }).code }
  }
  const out: Exchange = { status: null, headers: {}, data: '', rstCode: null }
  stream.on('error', () => {})
  stream.on('response', (h) => { out.status = Number(h[':status']); out.headers = h })
  stream.on('data', (d: Buffer) => { out.data += d.toString('latin1') })
  const closed = new Promise<void>((resolve) => stream.once('close', resolve))
  for (const step of steps) {
    if (step === 'END') stream.end()
    else if (step === 'CANCEL') stream.close(http2.constants.NGHTTP2_CANCEL)
    else if (step === 'DROP') session.destroy()
    else if (step === 'AWAIT_RESPONSE') {
      if (out.status === null && !stream.destroyed) await Promise.race([once(stream, 'response'), closed]).catch(() => {})
    } else stream.write(step)
  }
  stream.resume()
  await closed
  out.rstCode = stream.rstCode ?? null
  return out
}

interface Case {
  name: string
  headers: http2.OutgoingHttpHeaders
  steps: Step[]
  status: number | null
  rst: number | null
  check? (result: Exchange, headIndex: number): void
}

const NO_ERROR = http2.constants.NGHTTP2_NO_ERROR
const CANCEL = http2.constants.NGHTTP2_CANCEL
/** A client key makes the sidecar pass the app's accept through unchecked (Envoy), so the scripted app needs none. */
const KEY = { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }
const connect = (path: string, protocol = 'websocket', extra: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders =>
  ({ ':method': 'CONNECT', ':protocol': protocol, ':path': path, ':scheme': 'http', ':authority': 'sidecar.test', ...KEY, ...extra })
const tunnel: Step[] = ['AWAIT_RESPONSE', 'PING', 'END']
const echoed = (r: Exchange): void => { assert.match(r.data, /PING$/, 'the tunnel echoes') }
const notUpstream = (_r: Exchange, i: number): void => { assert.equal(upstream.heads.length, i, 'nothing reached the app') }
const many = (n: number, value = 'v'): http2.OutgoingHttpHeaders => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, value]))

const cases: Case[] = [
  // :protocol values
  { name: 'a canonical extended CONNECT for websocket is tunnelled with 200', headers: connect('/ws/accept'), steps: tunnel, status: 200, rst: null, check: (r, i) => { echoed(r); assert.match(upstream.heads[i]!, /^GET \/ws\/accept HTTP\/1\.1\r\n/) } },
  { name: 'a :protocol in upper case is matched case-insensitively', headers: connect('/ws/accept', 'WebSocket'), steps: tunnel, status: 200, rst: null, check: echoed },
  { name: 'a configured non-WebSocket :protocol is tunnelled', headers: connect('/ws/accept', 'foo'), steps: tunnel, status: 200, rst: null, check: (r, i) => { echoed(r); assert.match(upstream.heads[i]!, /\r\nupgrade: foo/i) } },
  { name: 'an unconfigured :protocol gets 403', headers: connect('/ws/accept', 'bar'), steps: ['AWAIT_RESPONSE'], status: 403, rst: NO_ERROR, check: notUpstream },
  // nghttp2 checks :protocol and its method before Node sees the stream (RFC 8441 §4, RFC 9113 §8.1.1).
  { name: 'an empty :protocol is reset with PROTOCOL_ERROR before routing', headers: connect('/ws/accept', ''), steps: ['AWAIT_RESPONSE'], status: null, rst: http2.constants.NGHTTP2_PROTOCOL_ERROR, check: notUpstream },
  { name: 'a :protocol listing two protocols gets 403', headers: connect('/ws/accept', 'websocket, foo'), steps: ['AWAIT_RESPONSE'], status: 403, rst: NO_ERROR, check: notUpstream },
  { name: 'a :protocol with a space gets 403', headers: connect('/ws/accept', 'web socket'), steps: ['AWAIT_RESPONSE'], status: 403, rst: NO_ERROR, check: notUpstream },
  { name: 'a versioned :protocol gets 403', headers: connect('/ws/accept', 'websocket/13'), steps: ['AWAIT_RESPONSE'], status: 403, rst: NO_ERROR, check: notUpstream },
  { name: 'a 4 KiB :protocol gets 403', headers: connect('/ws/accept', 'p'.repeat(4096)), steps: ['AWAIT_RESPONSE'], status: 403, rst: NO_ERROR, check: notUpstream },
  { name: 'a :protocol of h2c is never tunnelled', headers: connect('/ws/accept', 'h2c'), steps: ['AWAIT_RESPONSE'], status: 403, rst: NO_ERROR, check: notUpstream },
  { name: 'a :protocol on a GET is refused by the sidecar', headers: { ':method': 'GET', ':protocol': 'websocket', ':path': '/ws/accept', ':scheme': 'http', ':authority': 'sidecar.test' }, steps: ['AWAIT_RESPONSE'], status: null, rst: http2.constants.NGHTTP2_PROTOCOL_ERROR, check: notUpstream },
  // Pseudo-headers
  { name: 'an extended CONNECT without :authority takes Host from nowhere and is still routed', headers: { ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/ws/accept', ':scheme': 'http', ...KEY }, steps: tunnel, status: 200, rst: null, check: echoed },
  { name: 'an extended CONNECT to no route gets 404', headers: connect('/nowhere'), steps: ['AWAIT_RESPONSE'], status: 404, rst: NO_ERROR, check: notUpstream },
  { name: 'an extended CONNECT to a route that disables the type gets 403', headers: connect('/off/accept'), steps: ['AWAIT_RESPONSE'], status: 403, rst: NO_ERROR, check: notUpstream },
  { name: 'an extended CONNECT to a local route is answered by its handler', headers: connect('/plain'), steps: ['AWAIT_RESPONSE'], status: 200, rst: NO_ERROR, check: (r) => assert.equal(r.data, 'plain') },
  { name: 'a hook answer to an extended CONNECT reaches the client and stops it', headers: connect('/ws/accept', 'websocket', { 'x-deny': '1' }), steps: ['AWAIT_RESPONSE'], status: 401, rst: NO_ERROR, check: notUpstream },
  { name: 'a plain CONNECT without :protocol to a route that does not enable CONNECT gets 403', headers: { ':method': 'CONNECT', ':authority': '127.0.0.1:1' }, steps: ['AWAIT_RESPONSE'], status: 403, rst: NO_ERROR, check: notUpstream },
  { name: 'a plain CONNECT with DATA to a route that does not enable CONNECT gets 403 and the DATA goes nowhere', headers: { ':method': 'CONNECT', ':authority': '127.0.0.1:1' }, steps: ['SMUGGLED', 'AWAIT_RESPONSE'], status: 403, rst: NO_ERROR, check: notUpstream },
  { name: 'a query string in :path is carried to the app', headers: connect('/ws/accept?a=1&b=2'), steps: tunnel, status: 200, rst: null, check: (r, i) => { echoed(r); assert.match(upstream.heads[i]!, /^GET \/ws\/accept\?a=1&b=2 /) } },
  // Headers
  { name: 'connection-specific headers cannot be sent on HTTP/2 and Node refuses them', headers: connect('/ws/accept', 'websocket', { connection: 'upgrade' }), steps: [], status: null, rst: null, check: (r) => assert.equal(r.refused, 'ERR_HTTP2_INVALID_CONNECTION_HEADERS') },
  { name: 'an upgrade header sent as a regular HTTP/2 header is refused by Node', headers: connect('/ws/accept', 'websocket', { upgrade: 'h2c' }), steps: [], status: null, rst: null, check: (r) => assert.equal(r.refused, 'ERR_HTTP2_INVALID_CONNECTION_HEADERS') },
  // Counted on the HTTP/1.1-shaped request, as on the front: host, the key and version, upgrade, connection.
  { name: 'exactly one hundred headers are tunnelled', headers: connect('/ws/accept', 'websocket', many(95)), steps: tunnel, status: 200, rst: null, check: echoed },
  { name: 'one hundred and one headers get 431', headers: connect('/ws/accept', 'websocket', many(96)), steps: ['AWAIT_RESPONSE'], status: 431, rst: NO_ERROR, check: notUpstream },
  { name: 'an 8 KiB header value is tunnelled', headers: connect('/ws/accept', 'websocket', { 'x-big': 'a'.repeat(8 * 1024) }), steps: tunnel, status: 200, rst: null, check: (r, i) => { echoed(r); assert.ok(upstream.heads[i]!.includes('a'.repeat(8 * 1024))) } },
  { name: 'a 100 KiB header block is refused before routing', headers: connect('/ws/accept', 'websocket', { 'x-big': 'a'.repeat(100 * 1024) }), steps: ['AWAIT_RESPONSE'], status: null, rst: http2.constants.NGHTTP2_REFUSED_STREAM, check: notUpstream },
  { name: 'content-length on an extended CONNECT is forwarded as sent and its DATA is tunnel payload', headers: connect('/ws/accept', 'websocket', { 'content-length': '4' }), steps: ['BODY', 'AWAIT_RESPONSE', 'END'], status: 200, rst: null, check: (r, i) => { assert.equal(r.data, 'BODY'); assert.match(upstream.heads[i]!, /\r\ncontent-length: 4\r\n/i) } },
  { name: 'DATA past a declared content-length on an extended CONNECT is a stream PROTOCOL_ERROR', headers: connect('/ws/accept', 'websocket', { 'content-length': '4' }), steps: ['BODY', 'AWAIT_RESPONSE', 'PING'], status: 200, rst: http2.constants.NGHTTP2_PROTOCOL_ERROR },
  { name: 'a client key is passed through and a wrong accept relayed unchecked', headers: connect('/ws/bad-accept', 'websocket', { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }), steps: tunnel, status: 200, rst: null, check: (r) => { echoed(r); assert.equal(r.headers['sec-websocket-accept'], 'd3Jvbmc=') } },
  { name: 'a wrong accept for a generated key gives 502', headers: connect('/ws/bad-accept', 'websocket', { 'sec-websocket-key': undefined, 'sec-websocket-version': undefined }), steps: ['AWAIT_RESPONSE'], status: 502, rst: NO_ERROR },
  // Bytes on the stream before the answer (a body on CONNECT)
  { name: 'DATA sent before the 200 is held and follows it in order', headers: connect('/ws/accept', 'foo'), steps: ['EARLY', 'AWAIT_RESPONSE', 'PING', 'END'], status: 200, rst: null, check: (r) => assert.match(r.data, /EARLYPING$/) },
  { name: 'DATA sent before a refusal never reaches the app', headers: connect('/ws/426', 'foo'), steps: ['GET /internal HTTP/1.1\r\nhost: x\r\n\r\n', 'AWAIT_RESPONSE'], status: 426, rst: NO_ERROR, check: (r, i) => { assert.equal(r.data, 'nope'); assert.equal(upstream.after.get(i), undefined) } },
  { name: 'END_STREAM before the 200 is carried as a half-close after it', headers: connect('/ws/accept', 'foo'), steps: ['EARLY', 'END'], status: 200, rst: null, check: (r) => assert.equal(r.data, 'EARLY') },
  // The client closing at each step
  { name: 'a client cancelling before the answer leaves nothing behind', headers: connect('/ws/silent'), steps: ['CANCEL'], status: null, rst: CANCEL },
  { name: 'a client cancelling after early DATA before the answer leaves nothing behind', headers: connect('/ws/silent'), steps: ['EARLY', 'CANCEL'], status: null, rst: CANCEL },
  { name: 'a client cancelling right after the 200 ends the tunnel', headers: connect('/ws/accept'), steps: ['AWAIT_RESPONSE', 'CANCEL'], status: 200, rst: CANCEL },
  { name: 'a client cancelling mid tunnel ends the tunnel', headers: connect('/ws/accept'), steps: ['AWAIT_RESPONSE', 'PING', 'CANCEL'], status: 200, rst: CANCEL },
  { name: 'a client ending its side right after the 200 ends the tunnel both ways', headers: connect('/ws/accept'), steps: ['AWAIT_RESPONSE', 'END'], status: 200, rst: null },
  { name: 'a client dropping its connection before the answer leaves nothing behind', headers: connect('/ws/silent'), steps: ['DROP'], status: null, rst: null },
  { name: 'a client dropping its connection mid tunnel ends the tunnel', headers: connect('/ws/accept'), steps: ['AWAIT_RESPONSE', 'PING', 'DROP'], status: 200, rst: null },
  // The app failing at each step, or answering oddly
  { name: 'an app answering garbage gives 503', headers: connect('/ws/garbage'), steps: ['AWAIT_RESPONSE'], status: 503, rst: NO_ERROR },
  { name: 'an app closing on the head gives 503', headers: connect('/ws/close-on-head'), steps: ['AWAIT_RESPONSE'], status: 503, rst: NO_ERROR },
  { name: 'an app resetting on the head gives 503', headers: connect('/ws/reset-on-head'), steps: ['AWAIT_RESPONSE'], status: 503, rst: NO_ERROR },
  { name: 'an app closing mid status line gives 503', headers: connect('/ws/half-101'), steps: ['AWAIT_RESPONSE'], status: 503, rst: NO_ERROR },
  { name: 'a silent app gives 504 at the route timeout', headers: connect('/ws/silent'), steps: ['AWAIT_RESPONSE'], status: 504, rst: NO_ERROR },
  { name: 'a 101 without Upgrade from the app gives 502', headers: connect('/ws/101-no-upgrade', 'foo'), steps: ['AWAIT_RESPONSE'], status: 502, rst: NO_ERROR },
  { name: 'a 101 naming another protocol gives 502', headers: connect('/ws/101-other', 'foo'), steps: ['AWAIT_RESPONSE'], status: 502, rst: NO_ERROR },
  { name: 'a 200 naming an upgrade is relayed as 200 and not tunnelled', headers: connect('/ws/200-upgrade', 'foo'), steps: ['EARLY', 'AWAIT_RESPONSE'], status: 200, rst: NO_ERROR, check: (r, i) => { assert.equal(r.data, 'no'); assert.equal(upstream.after.get(i), undefined) } },
  { name: 'a 500 from the app is relayed with its body', headers: connect('/ws/500', 'foo'), steps: ['AWAIT_RESPONSE'], status: 500, rst: NO_ERROR, check: (r) => assert.equal(r.data, 'boom') },
  { name: 'an app closing right after its 101 ends the stream after its bytes', headers: connect('/ws/close-after-101', 'foo'), steps: ['AWAIT_RESPONSE', 'END'], status: 200, rst: null, check: (r) => assert.equal(r.data, 'BYE') },
  // The reset follows the 101 so closely that the sidecar reads a FIN: the stream's sending side ends (END_STREAM)
  // and the tunnel closes once the client ends its own.
  { name: 'an app resetting right after its 101 ends the stream once the client ends its side', headers: connect('/ws/reset-after-101', 'foo'), steps: ['AWAIT_RESPONSE', 'END'], status: 200, rst: null },
  { name: 'an app resetting on the first tunnelled byte resets the stream', headers: connect('/ws/reset-on-data', 'foo'), steps: ['AWAIT_RESPONSE', 'PING'], status: 200, rst: CANCEL },
  { name: 'bytes the app sends with its 101 reach the client', headers: connect('/ws/101-with-data', 'foo'), steps: ['AWAIT_RESPONSE', 'END'], status: 200, rst: null, check: (r) => assert.equal(r.data, 'HELLO') }
]

async function session (): Promise<http2.ClientHttp2Session> {
  const s = http2.connect(origin)
  s.on('error', () => {})
  await once(s, 'remoteSettings')
  return s
}

async function served (s: http2.ClientHttp2Session): Promise<void> {
  const r = await exchange(s, { ':method': 'GET', ':path': '/plain', ':scheme': 'http', ':authority': 'sidecar.test' }, ['END'])
  assert.equal(r.status, 200, 'the next stream is served')
  assert.equal(r.data, 'plain')
}

for (const c of cases) {
  test(c.name, { timeout: 5000 }, async () => {
    const headIndex = upstream.heads.length
    const s = await session()
    try {
      const result = await exchange(s, c.headers, c.steps)
      assert.equal(result.status, c.status, `status; got ${JSON.stringify(result)}`)
      assert.equal(result.rstCode === 0 && c.rst === null ? null : result.rstCode, c.rst, `RST_STREAM code; got ${JSON.stringify(result)}`)
      c.check?.(result, headIndex)
      await gaugesSettled(app, ['downstream_cx_upgrades_active'])
      assert.equal(app.switchyard.stats().downstream_cx_upgrades_active ?? 0, 0, 'no upgrade left active')
      if (!s.destroyed && !s.closed) await served(s)
      const fresh = await session()
      try { await served(fresh) } finally { fresh.destroy() }
    } finally {
      s.destroy()
    }
  })
}

/**
 * Frames node:http2's client will not build, sent by hand: nghttp2 checks them before Node or Switchyard see
 * the stream (RFC 8441 §4: an extended CONNECT carries `:scheme` and `:path`; RFC 9113 §8.2: no
 * connection-specific fields, lower-case names), so the answer is RST_STREAM PROTOCOL_ERROR.
 */
interface RawCase { name: string, headers: Array<[string, string]>, status: number | null, rst: number | null }

const PROTOCOL_ERROR = http2.constants.NGHTTP2_PROTOCOL_ERROR
const pseudo = (omit: string[] = []): Array<[string, string]> =>
  ([[':method', 'CONNECT'], [':protocol', 'foo'], [':scheme', 'http'], [':path', '/ws/accept'], [':authority', 'sidecar.test']] as Array<[string, string]>)
    .filter(([name]) => !omit.includes(name))

const rawCases: RawCase[] = [
  { name: 'a hand-built extended CONNECT with every pseudo-header is tunnelled with 200', headers: pseudo(), status: 200, rst: null },
  { name: 'an extended CONNECT without :path is reset with PROTOCOL_ERROR', headers: pseudo([':path']), status: null, rst: PROTOCOL_ERROR },
  // RFC 9113 §8.5: a plain CONNECT carries :method and :authority only.
  { name: 'a plain CONNECT with :path is reset with PROTOCOL_ERROR', headers: [[':method', 'CONNECT'], [':authority', 'db.test:5432'], [':path', '/']], status: null, rst: PROTOCOL_ERROR },
  { name: 'a plain CONNECT with :scheme is reset with PROTOCOL_ERROR', headers: [[':method', 'CONNECT'], [':authority', 'db.test:5432'], [':scheme', 'http']], status: null, rst: PROTOCOL_ERROR },
  { name: 'a plain CONNECT without :authority is reset with PROTOCOL_ERROR', headers: [[':method', 'CONNECT']], status: null, rst: PROTOCOL_ERROR },
  { name: 'a plain CONNECT whose :authority has no port gets 400', headers: [[':method', 'CONNECT'], [':authority', 'db.test']], status: 400, rst: null },
  { name: 'a plain CONNECT whose :authority has port 0 gets 400', headers: [[':method', 'CONNECT'], [':authority', 'db.test:0']], status: 400, rst: null },
  { name: 'an extended CONNECT without :scheme is reset with PROTOCOL_ERROR', headers: pseudo([':scheme']), status: null, rst: PROTOCOL_ERROR },
  { name: 'an extended CONNECT without :path and :scheme is reset with PROTOCOL_ERROR', headers: pseudo([':path', ':scheme']), status: null, rst: PROTOCOL_ERROR },
  { name: 'an extended CONNECT with an empty :path is reset with PROTOCOL_ERROR', headers: [...pseudo([':path']), [':path', '']], status: null, rst: PROTOCOL_ERROR },
  { name: 'a :protocol on a plain CONNECT without :path is reset with PROTOCOL_ERROR', headers: pseudo([':path', ':scheme', ':protocol']).concat([[':protocol', 'foo']]), status: null, rst: PROTOCOL_ERROR },
  { name: 'a Connection field in an extended CONNECT is reset with PROTOCOL_ERROR', headers: [...pseudo(), ['connection', 'upgrade']], status: null, rst: PROTOCOL_ERROR },
  { name: 'an Upgrade: h2c field in an extended CONNECT is reset with PROTOCOL_ERROR', headers: [...pseudo(), ['upgrade', 'h2c']], status: null, rst: PROTOCOL_ERROR },
  { name: 'Transfer-Encoding in an extended CONNECT is reset with PROTOCOL_ERROR', headers: [...pseudo(), ['transfer-encoding', 'chunked']], status: null, rst: PROTOCOL_ERROR },
  { name: 'TE other than trailers in an extended CONNECT is reset with PROTOCOL_ERROR', headers: [...pseudo(), ['te', 'gzip']], status: null, rst: PROTOCOL_ERROR },
  { name: 'an upper-case field name in an extended CONNECT is reset with PROTOCOL_ERROR', headers: [...pseudo(), ['X-Upper', 'v']], status: null, rst: PROTOCOL_ERROR },
  { name: 'a pseudo-header after a regular field is reset with PROTOCOL_ERROR', headers: [...pseudo([':authority']), ['x-a', 'v'], [':authority', 'sidecar.test']], status: null, rst: PROTOCOL_ERROR },
  { name: 'a repeated :protocol is reset with PROTOCOL_ERROR', headers: [...pseudo([':authority']), [':protocol', 'websocket'], [':authority', 'sidecar.test']], status: null, rst: PROTOCOL_ERROR },
  { name: 'an unknown pseudo-header is reset with PROTOCOL_ERROR', headers: [...pseudo([':authority']), [':smuggle', 'x'], [':authority', 'sidecar.test']], status: null, rst: PROTOCOL_ERROR }
]

const port = (): number => Number(new URL(origin).port)

for (const c of rawCases) {
  test(c.name, { timeout: 5000 }, async () => {
    const headIndex = upstream.heads.length
    const result = await rawH2Stream(port(), c.headers)
    assert.equal(result.status, c.status, `status; got ${JSON.stringify(result)}`)
    assert.equal(result.rstCode, c.rst, `RST_STREAM code; got ${JSON.stringify(result)}`)
    if (c.status === null) assert.equal(upstream.heads.length, headIndex, 'nothing reached the app')
    // The hand-built client drops its connection at the answer: the tunnel, if any, ends with it.
    await gaugesSettled(app, ['downstream_cx_upgrades_active'])
    assert.equal(app.switchyard.stats().downstream_cx_upgrades_active ?? 0, 0, 'no upgrade left active')
    const fresh = await session()
    try { await served(fresh) } finally { fresh.destroy() }
  })
}

test('the sidecar tables hold at least sixty cases', () => {
  assert.ok(cases.length + rawCases.length >= 60, `${cases.length + rawCases.length} cases`)
})
