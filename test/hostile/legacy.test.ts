import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { proxy } from '@switchyard/core'
import websocketTcp from '@switchyard/websocket-tcp'
import { hostileFront, runHostileCases, type HostileCase, type RawPart, type RawResult, type ScriptedUpstream } from '../helpers/hostile.ts'

/**
 * Hostile inputs against a front with legacy `useWebsocket` routes (`/legacy/*`, the smuggling guard on)
 * beside a new-style route (`/ws/*`) on one server. Each case states the exact status the
 * client gets first (null: the connection closes with no response); afterwards the front still serves
 * a request and neither `downstream_cx_upgrades_active` nor `downstream_cx_websocket_active` is left
 * above zero.
 */
let app: FastifyInstance
let upstream: ScriptedUpstream
let port: number
const GAUGES = ['downstream_cx_upgrades_active', 'downstream_cx_websocket_active'] as const

before(async () => {
  ({ app, upstream, port } = await hostileFront(async (app) => {
    await app.register(websocketTcp)
    app.route({ method: ['GET', 'POST'], url: '/legacy/*', useWebsocket: true, upstream: { cluster: 'up', idleTimeout: 300 }, handler: proxy })
    app.get('/legacy-dead', { useWebsocket: true, upstream: { cluster: 'dead' } }, proxy)
    app.route({ method: ['GET', 'POST'], url: '/ws/*', upstream: { cluster: 'up', timeout: 300 }, handler: proxy })
    app.get('/off/*', { upstream: { cluster: 'up' }, upgradeConfigs: [{ upgradeType: 'websocket', enabled: false }] }, proxy)
  }))
})

after(async () => {
  await app.close()
  await upstream.close()
})

const KEY = 'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
const ws = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nhost: front\r\nconnection: Upgrade\r\nupgrade: websocket\r\n${KEY}${extra}\r\n`
const head = (lines: string): string => `GET /legacy/accept HTTP/1.1\r\nhost: f\r\n${lines}\r\n`

type Case = HostileCase

const echoed = (r: RawResult): void => { assert.match(r.data, /PING$/, 'the pipe echoes') }
const tunnel: RawPart[] = ['AWAIT_HEAD', 'PING', 'END']
const closes = (r: RawResult): void => { assert.match(r.data, /\r\nconnection: close\r\n/i) }
const nothingAfterHead = (_r: RawResult, i: number): void => { assert.equal(upstream.after.get(i), undefined, 'no byte after the head reached the upstream') }
const notUpstream = (_r: RawResult, i: number): void => { assert.equal(upstream.heads.length, i, 'nothing reached the upstream') }
const many = (n: number, value = 'v'): string => Array.from({ length: n }, (_, i) => `x-h${i}: ${value}\r\n`).join('')

const cases: Case[] = [
  // Connection and Upgrade lists on a legacy route
  { name: 'a canonical WebSocket upgrade is piped to the legacy upstream', parts: [ws('/legacy/accept'), ...tunnel], status: 101, check: echoed },
  { name: 'Connection: keep-alive, Upgrade is taken over by the legacy route', parts: [head('connection: keep-alive, Upgrade\r\nupgrade: websocket\r\n'), ...tunnel], status: 101, check: echoed },
  { name: 'an upper-case Upgrade: WEBSOCKET is taken over by the legacy route', parts: [head('CONNECTION: UPGRADE\r\nUPGRADE: WEBSOCKET\r\n'), ...tunnel], status: 101, check: echoed },
  { name: 'empty Connection tokens do not hide the upgrade token from the legacy route', parts: [head('connection: ,, upgrade ,\r\nupgrade: websocket\r\n'), ...tunnel], status: 101, check: echoed },
  { name: 'two Connection headers are read as one list by the legacy route', parts: [head('connection: keep-alive\r\nconnection: upgrade\r\nupgrade: websocket\r\n'), ...tunnel], status: 101, check: echoed },
  { name: 'the request head reaches the legacy upstream with its header case kept', parts: [head('Connection: Upgrade\r\nUpgrade: WebSocket\r\nX-Odd-Case: Yes\r\n'), ...tunnel], status: 101, check: (r, i) => { echoed(r); assert.match(upstream.heads[i]!, /\r\nX-Odd-Case: Yes/) } },
  { name: 'Upgrade without the upgrade token in Connection is a plain request to the handler', parts: [head('connection: keep-alive\r\nupgrade: websocket\r\n'), 'CLOSE_AFTER_RESPONSE'], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /upgrade: websocket/i) },
  { name: 'Connection: upgrade without Upgrade is a plain request to the handler', parts: [head('connection: upgrade\r\n'), 'CLOSE_AFTER_RESPONSE'], status: 200 },
  { name: 'several Upgrade values on a legacy route are refused with 403', parts: [head('connection: upgrade\r\nupgrade: websocket, foo\r\n')], status: 403, check: notUpstream },
  { name: 'a repeated Upgrade header on a legacy route is refused with 403', parts: [head('connection: upgrade\r\nupgrade: websocket\r\nupgrade: websocket\r\n')], status: 403, check: notUpstream },
  { name: 'an unconfigured upgrade type on a legacy route gets 403 with an empty body', parts: [head('connection: upgrade\r\nupgrade: bar\r\n')], status: 403, check: (r, i) => { notUpstream(r, i); assert.match(r.data, /content-length: 0\r\n/i) } },
  { name: 'a configured non-WebSocket type on a legacy route is tunnelled new style', parts: [head('connection: upgrade\r\nupgrade: foo\r\n'), ...tunnel], status: 101, check: echoed },
  { name: 'a versioned websocket token on a legacy route is refused with 403', parts: [head('connection: upgrade\r\nupgrade: websocket/13\r\n')], status: 403, check: notUpstream },
  { name: 'a 10 KiB Upgrade token on a legacy route is refused with 403', parts: [head(`connection: upgrade\r\nupgrade: ${'w'.repeat(10 * 1024)}\r\n`)], status: 403, check: notUpstream },
  { name: 'a POST WebSocket upgrade on a legacy route forwards its Content-Length body before the answer', parts: ['POST /legacy/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: websocket\r\ncontent-length: 4\r\n\r\nBODY', ...tunnel], status: 101, check: (r, i) => { echoed(r); assert.match(upstream.heads[i]!, /content-length: 4/); assert.equal(upstream.after.get(i), 'BODYPING') } },
  // RFC 9110 §7.8: a server ignores Upgrade in an HTTP/1.0 request.
  { name: 'an upgrade over HTTP/1.0 on a legacy route is a plain request to the handler, its Upgrade not forwarded', parts: ['GET /legacy/accept HTTP/1.0\r\nhost: f\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n', 'CLOSE_AFTER_RESPONSE'], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /upgrade: websocket/i) },
  // h2c
  { name: 'an h2c upgrade on a legacy route is a plain request to the handler', parts: [head('connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABk\r\n')], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /h2c|http2-settings/i) },
  { name: 'h2c listed before websocket on a legacy route is stripped whole', parts: [head('connection: upgrade\r\nupgrade: h2c, websocket\r\n')], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /upgrade:/i) },
  { name: 'an upper-case H2C on a legacy route is a plain request', parts: [head('connection: upgrade\r\nupgrade: H2C\r\n')], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /h2c/i) },
  // Sizes
  { name: 'exactly one hundred headers are taken over by the legacy route', parts: [ws('/legacy/accept', many(95)), ...tunnel], status: 101, check: echoed },
  { name: 'one hundred and one headers on a legacy route get 431', parts: [ws('/legacy/accept', many(96))], status: 431, check: notUpstream },
  { name: 'two thousand headers on a legacy route get 431', parts: [ws('/legacy/accept', many(2000))], status: 431, check: notUpstream },
  { name: 'a 20 KiB header value on a legacy route gets 431', parts: [ws('/legacy/accept', `x-big: ${'a'.repeat(20 * 1024)}\r\n`)], status: 431, check: notUpstream },
  { name: 'an 8 KiB header value is re-serialised whole to the legacy upstream', parts: [ws('/legacy/accept', `x-big: ${'a'.repeat(8 * 1024)}\r\n`), ...tunnel], status: 101, check: (r, i) => { echoed(r); assert.ok(upstream.heads[i]!.includes('a'.repeat(8 * 1024))) } },
  { name: 'a 20 KiB path on a legacy route gets 431', parts: [ws(`/legacy/accept?${'q'.repeat(20 * 1024)}`)], status: 431, check: notUpstream },
  // Framing
  { name: 'Content-Length with Transfer-Encoding on a legacy upgrade gets 400', parts: [ws('/legacy/accept', 'content-length: 3\r\ntransfer-encoding: chunked\r\n')], status: 400, check: notUpstream },
  { name: 'a chunked legacy upgrade keeps Transfer-Encoding and its chunked body goes before the answer', parts: [ws('/legacy/accept', 'transfer-encoding: chunked\r\n') + '3\r\nabc\r\n0\r\n\r\n', 'AWAIT_HEAD', 'END'], status: 101, check: (_r, i) => { assert.match(upstream.heads[i]!, /\r\ntransfer-encoding: chunked/i); assert.equal(upstream.after.get(i)?.startsWith('3\r\nabc\r\n0\r\n\r\n'), true) } },
  { name: 'TE, Keep-Alive and Proxy-Connection are dropped from the legacy head', parts: [ws('/legacy/accept', 'te: trailers\r\nkeep-alive: 5\r\nproxy-connection: keep-alive\r\n'), ...tunnel], status: 101, check: (r, i) => { echoed(r); assert.doesNotMatch(upstream.heads[i]!, /\r\nte:|keep-alive: 5|proxy-connection/i) } },
  { name: 'two differing Content-Length headers on a legacy upgrade get 400', parts: [ws('/legacy/accept', 'content-length: 1\r\ncontent-length: 2\r\n')], status: 400, check: notUpstream },
  { name: 'a header name with a space on a legacy route gets 400', parts: [ws('/legacy/accept', 'bad name: x\r\n')], status: 400, check: notUpstream },
  { name: 'a bare LF head on a legacy route gets 400', parts: ['GET /legacy/accept HTTP/1.1\nhost: f\nconnection: upgrade\nupgrade: websocket\n\n'], status: 400, check: notUpstream },
  { name: 'non-HTTP bytes toward a legacy front get 400', parts: [Buffer.from([0x16, 0x03, 0x01, 0x00, 0x10, 0x01, 0x00, 0x00, 0x0c, 0x0d, 0x0a, 0x0d, 0x0a])], status: 400 },
  // RFC 9110 §9.3.6: a CONNECT's target is host:port; an origin-form one is refused before any route.
  { name: 'an HTTP/1.1 CONNECT to a legacy path gets 400 and is never piped', parts: ['CONNECT /legacy/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: websocket\r\ncontent-length: 3\r\n\r\nabc'], status: 400, check: notUpstream },
  // The client closing at each step
  { name: 'a client dropping mid head on a legacy front gets no response', parts: ['GET /legacy/accept HTTP/1.1\r\nhost: f\r\nconn', 'DESTROY'], status: null },
  { name: 'a client half-closing mid head on a legacy front gets 400', parts: ['GET /legacy/accept HTTP/1.1\r\nhost: f\r\nconn', 'END'], status: 400 },
  { name: 'a head sent one byte per write is taken over by the legacy route', parts: [...ws('/legacy/accept').split(''), ...tunnel], status: 101, check: echoed },
  { name: 'a client dropping before a silent legacy upstream answers leaves nothing behind', parts: [ws('/legacy/silent'), 'DESTROY'], status: null },
  { name: 'a client dropping after early bytes before the legacy answer leaves nothing behind', parts: [ws('/legacy/silent') + 'EARLY', 'DESTROY'], status: null },
  { name: 'a client dropping right after the legacy 101 ends the pipe', parts: [ws('/legacy/accept'), 'AWAIT_HEAD', 'DESTROY'], status: 101 },
  { name: 'a client half-closing right after the legacy 101 ends the pipe both ways', parts: [ws('/legacy/accept'), 'AWAIT_HEAD', 'END'], status: 101 },
  { name: 'a client dropping mid pipe ends the legacy pipe', parts: [ws('/legacy/accept'), 'AWAIT_HEAD', 'PING', 'DESTROY'], status: 101 },
  { name: 'early bytes held by the guard follow the 101 in order', parts: [ws('/legacy/accept') + 'EARLY', 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: (r) => assert.match(r.data, /EARLYPING$/) },
  // The legacy upstream failing at each step, or answering oddly
  { name: 'a refused legacy connection gives 504 with Connection: close', parts: [ws('/legacy-dead')], status: 504, check: closes },
  { name: 'a refused legacy connection with early bytes gives 504 and drops them', parts: [ws('/legacy-dead') + 'EARLY'], status: 504, check: closes },
  { name: 'a legacy upstream answering garbage gives 502', parts: [ws('/legacy/garbage')], status: 502, check: closes },
  { name: 'a legacy upstream answering garbage and staying open gives 502', parts: [ws('/legacy/garbage-open')], status: 502, check: closes },
  { name: 'a legacy upstream closing on the head gives 503', parts: [ws('/legacy/close-on-head')], status: 503, check: closes },
  { name: 'a legacy upstream resetting on the head gives 503', parts: [ws('/legacy/reset-on-head')], status: 503, check: closes },
  { name: 'a legacy upstream closing mid status line gives 503', parts: [ws('/legacy/half-101')], status: 503, check: closes },
  { name: 'a legacy upstream stalling mid status line is closed at the idle timeout', parts: [ws('/legacy/half-101-open')], status: null },
  { name: 'a silent legacy upstream is closed at the idle timeout', parts: [ws('/legacy/silent')], status: null, check: () => assert.ok((app.switchyard.stats().downstream_rq_idle_timeout ?? 0) >= 1) },
  { name: 'a legacy 101 head over 64 KiB gives 502', parts: [ws('/legacy/huge-head')], status: 502, check: closes },
  { name: 'a legacy 101 without Upgrade is piped as the upstream sent it', parts: [ws('/legacy/101-no-upgrade'), 'AWAIT_HEAD', 'END'], status: 101 },
  { name: 'a legacy 101 naming another protocol is piped as the upstream sent it', parts: [ws('/legacy/101-other'), 'AWAIT_HEAD', 'END'], status: 101, check: (r) => assert.match(r.data, /upgrade: something-else/i) },
  { name: 'a wrong Sec-WebSocket-Accept is relayed untouched by the legacy pipe', parts: [ws('/legacy/bad-accept'), ...tunnel], status: 101, check: (r) => { echoed(r); assert.match(r.data, /sec-websocket-accept: d3Jvbmc=/i) } },
  { name: 'an interim 100 is relayed before the legacy 101', parts: [ws('/legacy/100-then-101'), 'AWAIT_HEAD', 'PING', 'END'], status: 100, check: (r) => { echoed(r); assert.match(r.data, /\r\n\r\nHTTP\/1\.1 101 /) } },
  { name: 'an HTTP/1.0 101 is piped by the legacy route', parts: [ws('/legacy/http10-101'), 'AWAIT_HEAD', 'PING', 'END'], status: null, check: (r) => { echoed(r); assert.match(r.data, /^HTTP\/1\.0 101 /) } },
  { name: 'bytes sent with the legacy 101 reach the client', parts: [ws('/legacy/101-with-data'), 'AWAIT_HEAD', 'END'], status: 101, check: (r) => assert.match(r.data, /\r\n\r\nHELLO/) },
  { name: 'a legacy upstream closing right after its 101 closes the client after its bytes', parts: [ws('/legacy/close-after-101'), 'AWAIT_HEAD', 'END'], status: 101, check: (r) => assert.match(r.data, /BYE$/) },
  { name: 'a legacy upstream resetting right after its 101 ends the client', parts: [ws('/legacy/reset-after-101'), 'AWAIT_HEAD'], status: 101 },
  { name: 'a legacy upstream resetting on the first piped byte ends the client', parts: [ws('/legacy/reset-on-data'), 'AWAIT_HEAD', 'PING'], status: 101 },
  { name: 'a legacy 426 is relayed with Connection: close and early bytes never reach the upstream', parts: [ws('/legacy/426') + 'GET /internal HTTP/1.1\r\nhost: x\r\n\r\n'], status: 426, check: (r, i) => { closes(r); nothingAfterHead(r, i) } },
  { name: 'a legacy 426 that keeps its connection alive is relayed and both connections close', parts: [ws('/legacy/426-keep-alive') + 'EARLY'], status: 426, check: (r, i) => { closes(r); assert.match(r.data, /nope$/); nothingAfterHead(r, i) } },
  { name: 'a legacy 200 naming an upgrade is relayed and not piped', parts: [ws('/legacy/200-upgrade') + 'EARLY'], status: 200, check: (r, i) => { assert.match(r.data, /no$/); nothingAfterHead(r, i) } },
  { name: 'a legacy 302 is relayed with its Location', parts: [ws('/legacy/302')], status: 302, check: (r) => assert.match(r.data, /location: \/elsewhere/i) },
  { name: 'a legacy 500 is relayed with its body', parts: [ws('/legacy/500')], status: 500, check: (r) => assert.match(r.data, /boom$/) },
  // The new-style route beside it
  { name: 'the new-style route beside the legacy one tunnels a WebSocket', parts: [ws('/ws/accept'), ...tunnel], status: 101, check: echoed },
  { name: 'the new-style route beside the legacy one refuses a 101 naming another protocol', parts: [ws('/ws/101-other')], status: 502 },
  { name: 'the new-style route beside the legacy one refuses a 101 without Upgrade', parts: [ws('/ws/101-no-upgrade')], status: 502 },
  { name: 'the new-style route beside the legacy one answers 504 to a silent upstream', parts: [ws('/ws/silent')], status: 504 },
  { name: 'a WebSocket upgrade to a route that disables it gets 403', parts: [ws('/off/accept')], status: 403, check: notUpstream },
  { name: 'a WebSocket upgrade to no route gets 404 on the legacy front', parts: [ws('/nowhere')], status: 404 },
  { name: 'a WebSocket upgrade to a local route is answered by its handler on the legacy front', parts: [ws('/plain')], status: 200, check: (r) => assert.match(r.data, /plain$/) }
]

runHostileCases(cases, () => ({ app, upstream, port }), GAUGES)

test('the legacy table holds at least fifty cases', () => {
  assert.ok(cases.length >= 50, `${cases.length} cases`)
})
