import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { proxy } from '@switchyard/core'
import { hostileFront, runHostileCases, type HostileCase, type RawResult, type ScriptedUpstream } from '../helpers/hostile.ts'

/**
 * Hostile inputs against a new-style front. Each case states the exact status the client gets
 * (null: the connection closes with no response), and afterwards the front must still serve a request
 * and have no upgrade left active.
 */
let app: FastifyInstance
let upstream: ScriptedUpstream
let port: number

before(async () => {
  ({ app, upstream, port } = await hostileFront((app) => {
    app.route({ method: ['GET', 'POST', 'PUT'], url: '/ws/*', upstream: { cluster: 'up', timeout: 300 }, handler: proxy })
    app.route({ method: ['GET', 'POST'], url: '/foo/*', upstream: { cluster: 'up', timeout: 300 }, handler: proxy })
    app.get('/dead', { upstream: { cluster: 'dead' } }, proxy)
  }))
})

after(async () => {
  await app.close()
  await upstream.close()
})

const ws = (path: string, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\nhost: front\r\nconnection: upgrade\r\nupgrade: websocket\r\n${extra}\r\n`

type Case = HostileCase

const T = (bytes: string): string => bytes // readability: a raw request
const echoed = (r: RawResult): void => { assert.match(r.data, /PING$/, 'tunnel echoes') }

const cases: Case[] = [
  // Connection and Upgrade lists
  { name: 'a canonical WebSocket upgrade is tunnelled', parts: [ws('/ws/accept'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'Connection: keep-alive, Upgrade is an upgrade', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: keep-alive, Upgrade\r\nupgrade: websocket\r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'a Connection list without spaces is an upgrade', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: Upgrade,keep-alive\r\nupgrade: websocket\r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'empty Connection tokens are ignored', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: , ,upgrade, \r\nupgrade: websocket\r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'odd whitespace around tokens is ignored', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection:    upgrade   \r\nupgrade:   websocket  \r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'header names and values in upper case are an upgrade', parts: [T('GET /ws/accept HTTP/1.1\r\nHOST: f\r\nCONNECTION: UPGRADE\r\nUPGRADE: WEBSOCKET\r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'two Connection headers are read as one list', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: keep-alive\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'Upgrade without the upgrade token in Connection is a plain request', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: keep-alive\r\nupgrade: websocket\r\n\r\n'), 'CLOSE_AFTER_RESPONSE'], status: 200, check: (r, i) => { assert.doesNotMatch(r.data, /101/); assert.doesNotMatch(upstream.heads[i] ?? '', /upgrade: websocket/i) } },
  { name: 'Connection: upgrade without an Upgrade header is a plain request', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\n\r\n'), 'CLOSE_AFTER_RESPONSE'], status: 200 },
  { name: 'several Upgrade values in one header are refused', parts: [ws('/ws/accept').replace('upgrade: websocket', 'upgrade: websocket, foo')], status: 403 },
  { name: 'a repeated Upgrade header is refused', parts: [ws('/ws/accept', 'upgrade: websocket\r\n')], status: 403 },
  { name: 'an empty Upgrade value is a plain request', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: \r\n\r\n'), 'CLOSE_AFTER_RESPONSE'], status: 200 },
  { name: 'a configured non-WebSocket type is tunnelled', parts: [T('GET /foo/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: foo\r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'upgrade types match case-insensitively', parts: [T('GET /foo/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: FoO\r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'an unconfigured type gets 403 with an empty body', parts: [T('GET /foo/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: bar\r\n\r\n')], status: 403, check: (r) => assert.match(r.data, /content-length: 0\r\n/i) },
  { name: 'a versioned token is a different type and is refused', parts: [ws('/ws/accept').replace('upgrade: websocket', 'upgrade: websocket/13')], status: 403 },
  { name: 'an upgrade to a local route without upstream is answered by its handler', parts: [ws('/plain')], status: 200, check: (r) => assert.match(r.data, /plain$/) },
  { name: 'an upgrade to no route gets 404', parts: [ws('/nowhere')], status: 404 },
  { name: 'a POST upgrade carries its body bytes after the 101', parts: [T('POST /foo/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: foo\r\ncontent-length: 4\r\n\r\nBODY'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: (r, i) => { assert.match(r.data, /BODYPING$/); assert.match(upstream.heads[i]!, /content-length: 4/) } },
  { name: 'a PUT upgrade is tunnelled', parts: [T('PUT /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  // h2c
  { name: 'an h2c upgrade is served as a plain request', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n')], status: 200, check: (r, i) => { assert.doesNotMatch(upstream.heads[i]!, /h2c|http2-settings/i); assert.doesNotMatch(r.data, /101/) } },
  { name: 'an h2c upgrade in upper case is served as a plain request', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: Upgrade\r\nupgrade: H2C\r\n\r\n')], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /h2c/i) },
  { name: 'h2c listed with another protocol is stripped whole', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: h2c, websocket\r\n\r\n')], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /upgrade:/i) },
  { name: 'an h2c upgrade to a local route reaches its handler', parts: [T('GET /plain HTTP/1.1\r\nhost: f\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABk\r\n\r\n')], status: 200, check: (r) => assert.match(r.data, /plain$/) },
  // Sizes
  { name: 'more headers than Envoy allows (100) get 431', parts: [ws('/ws/accept', Array.from({ length: 101 }, (_, i) => `x-h${i}: v\r\n`).join(''))], status: 431 },
  { name: 'more headers than Node keeps get 431 rather than a truncated head upstream', parts: [ws('/ws/accept', Array.from({ length: 2100 }, (_, i) => `x-${i}: v\r\n`).join(''))], status: 431 },
  { name: 'a 20 KiB header value gets 431', parts: [ws('/ws/accept', `x-big: ${'a'.repeat(20 * 1024)}\r\n`)], status: 431 },
  { name: 'a 20 KiB path gets 431', parts: [ws(`/ws/accept?${'q'.repeat(20 * 1024)}`)], status: 431 },
  // Framing
  { name: 'Content-Length with Transfer-Encoding on an upgrade gets 400', parts: [ws('/ws/accept', 'content-length: 3\r\ntransfer-encoding: chunked\r\n')], status: 400 },
  { name: 'chunk framing after an upgrade head is forwarded verbatim without Transfer-Encoding', parts: [ws('/ws/accept', 'transfer-encoding: chunked\r\n') + '3\r\n123\r\n0\r\n\r\n', 'AWAIT_HEAD', 'END'], status: 101, check: (r, i) => { assert.doesNotMatch(upstream.heads[i]!, /transfer-encoding/i); assert.match(r.data, /3\r\n123\r\n0\r\n\r\n$/) } },
  { name: 'Content-Length on an upgrade is forwarded as sent', parts: [ws('/ws/accept', 'content-length: 0\r\n'), 'AWAIT_HEAD', 'END'], status: 101, check: (_r, i) => assert.match(upstream.heads[i]!, /content-length: 0/) },
  { name: 'non-HTTP bytes get 400', parts: [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a])], status: 400 },
  { name: 'a bare LF request head gets 400', parts: [T('GET /ws/accept HTTP/1.1\nhost: f\nconnection: upgrade\nupgrade: websocket\n\n')], status: 400 },
  { name: 'a header name with a space gets 400', parts: [ws('/ws/accept', 'bad name: x\r\n')], status: 400 },
  { name: 'an HTTP/1.1 CONNECT announcing content gets 400 (RFC 9110 §9.3.6: a CONNECT has none)', parts: [T('CONNECT 127.0.0.1:1 HTTP/1.1\r\nhost: 127.0.0.1:1\r\ncontent-length: 3\r\n\r\nabc')], status: 400 },
  { name: 'an HTTP/1.1 CONNECT that matches no route gets 404', parts: [T('CONNECT 127.0.0.1:1 HTTP/1.1\r\nhost: 127.0.0.1:1\r\n\r\n')], status: 404 },
  // The client closing at each step
  { name: 'a client half-closing mid-head gets 400', parts: ['GET /ws/accept HTTP/1.1\r\nhost: f\r\nconn', 'END'], status: 400 },
  { name: 'a client dropping mid-head gets no response', parts: ['GET /ws/accept HTTP/1.1\r\nhost: f\r\nconn', 'DESTROY'], status: null },
  { name: 'a client dropping right after its head leaves nothing behind', parts: [ws('/ws/silent'), 'DESTROY'], status: null },
  { name: 'a client half-closing before the 101 ends the stream and its upstream connection', parts: [ws('/ws/silent'), 'END'], status: null },
  // The upstream failing at each step
  { name: 'an upstream answering garbage gives 503', parts: [ws('/ws/garbage')], status: 503 },
  { name: 'an upstream closing on the head gives 503', parts: [ws('/ws/close-on-head')], status: 503 },
  { name: 'an upstream resetting on the head gives 503', parts: [ws('/ws/reset-on-head')], status: 503 },
  { name: 'an upstream closing mid status line gives 503', parts: [ws('/ws/half-101')], status: 503 },
  { name: 'a 101 without Upgrade gives 502', parts: [ws('/ws/101-no-upgrade')], status: 502 },
  { name: 'a 101 naming another protocol gives 502', parts: [ws('/ws/101-other'), 'NOT TUNNELLED'], status: 502 },
  { name: 'a silent upstream gives 504 at the route timeout', parts: [ws('/ws/silent')], status: 504 },
  { name: 'a 426 is relayed and early bytes never reach the upstream', parts: [ws('/ws/426') + 'GET /internal HTTP/1.1\r\nhost: x\r\n\r\n'], status: 426, check: (_r, i) => assert.equal(upstream.after.get(i), undefined) },
  { name: 'a refused connection gives 503', parts: [ws('/dead')], status: 503 },
  // More Connection and Upgrade lists
  { name: 'Connection: close, upgrade is still an upgrade', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: close, upgrade\r\nupgrade: websocket\r\n\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'a Connection list of a thousand tokens ending in upgrade is an upgrade', parts: [T(`GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: ${Array.from({ length: 1000 }, (_, i) => `t${i}`).join(', ')}, upgrade\r\nupgrade: websocket\r\n\r\n`), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'a token that only contains upgrade is not the upgrade token', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: upgraded, noupgrade\r\nupgrade: websocket\r\n\r\n'), 'CLOSE_AFTER_RESPONSE'], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /upgrade: websocket/i) },
  // Node's parser splits Connection on commas and spaces only, so a tab-separated token is not seen.
  { name: 'tabs around the upgrade token make a plain request that carries no Upgrade upstream', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection:\tkeep-alive,\tupgrade\t\r\nupgrade:\twebsocket\t\r\n\r\n'), 'CLOSE_AFTER_RESPONSE'], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /upgrade:\s*websocket/i) },
  { name: 'two Upgrade headers naming different types are refused', parts: [ws('/ws/accept', 'upgrade: foo\r\n')], status: 403 },
  { name: 'an Upgrade list with a trailing comma is refused', parts: [ws('/ws/accept').replace('upgrade: websocket', 'upgrade: websocket,')], status: 403 },
  { name: 'a 10 KiB Upgrade token is refused', parts: [ws('/ws/accept').replace('upgrade: websocket', `upgrade: ${'w'.repeat(10 * 1024)}`)], status: 403 },
  { name: 'two Content-Length headers that differ get 400', parts: [ws('/ws/accept', 'content-length: 1\r\ncontent-length: 2\r\n')], status: 400 },
  { name: 'a Sec-WebSocket-Key and version are forwarded untouched', parts: [ws('/ws/accept', 'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: (r, i) => { echoed(r); assert.match(upstream.heads[i]!, /sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==/) } },
  // RFC 9110 §7.8: a server ignores Upgrade in an HTTP/1.0 request.
  { name: 'an upgrade over HTTP/1.0 is served as a plain request that carries no Upgrade upstream', parts: [T('GET /ws/accept HTTP/1.0\r\nhost: f\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n')], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /upgrade/i) },
  // More h2c variants
  { name: 'an h2c upgrade without HTTP2-Settings is served as a plain request', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n')], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /upgrade/i) },
  // Node hands an h2c request to the 'upgrade' event with its body unread: core writes the head again without
  // h2c and gives the socket back to the HTTP server, so the POST and its body are proxied as a plain request.
  { name: 'a POST h2c upgrade with a body is proxied as a plain POST, body included', parts: [T('POST /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABk\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nBODY'), 'CLOSE_AFTER_RESPONSE'], status: 200, check: (_r, i) => { assert.match(upstream.heads[i]!, /^POST \/ws\/accept HTTP\/1\.1\r\n/); assert.doesNotMatch(upstream.heads[i]!, /h2c|http2-settings/i); assert.equal(upstream.after.get(i), 'BODY') } },
  { name: 'HTTP2-Settings alone in Connection is not an upgrade', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABk\r\n\r\n'), 'CLOSE_AFTER_RESPONSE'], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /http2-settings/i) },
  { name: 'an h2 upgrade (TLS-only token) is an unconfigured type and gets 403', parts: [ws('/ws/accept').replace('upgrade: websocket', 'upgrade: h2')], status: 403 },
  { name: 'an h2c upgrade on a configured non-WebSocket route is a plain request', parts: [T('GET /foo/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n')], status: 200 },
  { name: 'the HTTP/2 connection preface on an HTTP/1.1 port gets 400', parts: [T('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')], status: 400 },
  // More sizes
  { name: 'exactly one hundred headers are an upgrade', parts: [ws('/ws/accept', Array.from({ length: 97 }, (_, i) => `x-h${i}: v\r\n`).join('')), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'one hundred and one headers get 431', parts: [ws('/ws/accept', Array.from({ length: 98 }, (_, i) => `x-h${i}: v\r\n`).join(''))], status: 431 },
  { name: 'an 8 KiB header value is an upgrade', parts: [ws('/ws/accept', `x-big: ${'a'.repeat(8 * 1024)}\r\n`), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'many small headers past 16 KiB in all get 431', parts: [ws('/ws/accept', Array.from({ length: 90 }, (_, i) => `x-h${i}: ${'v'.repeat(200)}\r\n`).join(''))], status: 431 },
  { name: 'a 20 KiB header name gets 431', parts: [ws('/ws/accept', `x-${'n'.repeat(20 * 1024)}: v\r\n`)], status: 431 },
  // More framing
  { name: 'Transfer-Encoding gzip on an upgrade is dropped and what follows is payload', parts: [ws('/ws/accept', 'transfer-encoding: gzip\r\n'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: (r, i) => { echoed(r); assert.doesNotMatch(upstream.heads[i]!, /transfer-encoding/i) } },
  { name: 'TE: trailers on an upgrade is not forwarded as a hop-by-hop header', parts: [ws('/ws/accept', 'te: trailers\r\nkeep-alive: 5\r\nproxy-connection: keep-alive\r\n'), 'AWAIT_HEAD', 'END'], status: 101, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /keep-alive: 5|proxy-connection/i) },
  { name: 'a CONNECT in origin-form carrying upgrade headers gets 400 and is never tunnelled', parts: [T('CONNECT /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n')], status: 400 },
  { name: 'a CONNECT with a chunked body gets 400', parts: [T('CONNECT 127.0.0.1:1 HTTP/1.1\r\nhost: 127.0.0.1:1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')], status: 400 },
  { name: 'NUL bytes in a header value get 400', parts: [ws('/ws/accept', 'x-nul: a\u0000b\r\n')], status: 400 },
  // llhttp reads a request line without a version as HTTP/0.9: no upgrade is possible, the route answers and closes.
  { name: 'an HTTP/0.9 request line is served as a plain request and closed', parts: [T('GET /ws/accept\r\n\r\n')], status: 200, check: (_r, i) => assert.doesNotMatch(upstream.heads[i]!, /upgrade/i) },
  { name: 'an obsolete line folding in the Upgrade header gets 400', parts: [T('GET /ws/accept HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: web\r\n socket\r\n\r\n')], status: 400 },
  // Half-sent handshakes and the client closing at each step
  { name: 'a head sent one byte per write is an upgrade', parts: [...ws('/ws/accept').split(''), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'a head missing its final CRLF then half-closed gets 400', parts: [ws('/ws/accept').slice(0, -2), 'END'], status: 400 },
  { name: 'a client half-closing after early bytes before the 101 leaves nothing behind', parts: [ws('/ws/silent') + 'EARLY', 'END'], status: null },
  { name: 'a client dropping after early bytes before the 101 leaves nothing behind', parts: [ws('/ws/silent') + 'EARLY', 'DESTROY'], status: null },
  { name: 'a client dropping mid POST body before the 101 leaves nothing behind', parts: [T('POST /foo/silent HTTP/1.1\r\nhost: f\r\nconnection: upgrade\r\nupgrade: foo\r\ncontent-length: 10\r\n\r\nabc'), 'DESTROY'], status: null },
  { name: 'a client dropping right after the 101 ends the tunnel', parts: [ws('/ws/accept'), 'AWAIT_HEAD', 'DESTROY'], status: 101 },
  { name: 'a client half-closing right after the 101 ends the tunnel both ways', parts: [ws('/ws/accept'), 'AWAIT_HEAD', 'END'], status: 101 },
  { name: 'a client dropping mid tunnel ends the tunnel', parts: [ws('/ws/accept'), 'AWAIT_HEAD', 'PING', 'DESTROY'], status: 101 },
  // The upstream failing at each step, and odd answers
  { name: 'an upstream sending garbage and staying open gives 503', parts: [ws('/ws/garbage-open')], status: 503 },
  { name: 'an upstream stalling mid status line gives 504 at the route timeout', parts: [ws('/ws/half-101-open')], status: 504 },
  { name: 'a 101 with a 100 KiB head gives 503', parts: [ws('/ws/huge-head')], status: 503 },
  { name: 'a 101 naming two protocols gives 502', parts: [ws('/ws/101-two')], status: 502 },
  { name: 'a 101 naming the type in another case is tunnelled', parts: [ws('/ws/101-case'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'an HTTP/1.0 101 is tunnelled as the upstream answered', parts: [ws('/ws/http10-101'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: echoed },
  { name: 'an interim 100 before the 101 is skipped', parts: [ws('/ws/100-then-101'), 'AWAIT_HEAD', 'PING', 'END'], status: 101, check: (r) => { echoed(r); assert.doesNotMatch(r.data, /100 Continue/) } },
  { name: 'bytes the upstream sends with its 101 reach the client', parts: [ws('/ws/101-with-data'), 'AWAIT_HEAD', 'END'], status: 101, check: (r) => assert.match(r.data, /\r\n\r\nHELLO/) },
  { name: 'a wrong Sec-WebSocket-Accept for a client key is relayed unchecked', parts: [ws('/ws/bad-accept', 'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n'), 'AWAIT_HEAD', 'END'], status: 101, check: (r) => assert.match(r.data, /sec-websocket-accept: d3Jvbmc=/i) },
  { name: 'an upstream closing right after its 101 closes the client after the bytes it sent', parts: [ws('/ws/close-after-101'), 'AWAIT_HEAD', 'END'], status: 101, check: (r) => assert.match(r.data, /BYE$/) },
  { name: 'an upstream resetting right after its 101 resets the client', parts: [ws('/ws/reset-after-101'), 'AWAIT_HEAD'], status: 101 },
  { name: 'an upstream resetting on the first tunnelled byte ends the client', parts: [ws('/ws/reset-on-data'), 'AWAIT_HEAD', 'PING'], status: 101 },
  { name: 'a 200 naming an upgrade is relayed and not tunnelled', parts: [ws('/ws/200-upgrade') + 'EARLY'], status: 200, check: (r, i) => { assert.match(r.data, /no$/); assert.equal(upstream.after.get(i), undefined) } },
  { name: 'a 302 is relayed with its Location', parts: [ws('/ws/302')], status: 302, check: (r) => assert.match(r.data, /location: \/elsewhere/i) },
  { name: 'a 500 is relayed with its body', parts: [ws('/ws/500')], status: 500, check: (r) => assert.match(r.data, /boom$/) },
  { name: 'a 426 that keeps its connection alive is relayed and the client connection closes', parts: [ws('/ws/426-keep-alive')], status: 426, check: (r) => assert.match(r.data, /nope$/) }
]

runHostileCases(cases, () => ({ app, upstream, port }), ['downstream_cx_upgrades_active'])

test('the table holds at least ninety cases', () => {
  assert.ok(cases.length >= 90, `${cases.length} cases`)
})
