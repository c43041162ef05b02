import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { parseEndpoint, type RouteState } from '@switchyard/core/internal'
import { buildRequestHead, requestBodyLength } from '../src/request-head.ts'

function request (url: string, rawHeaders: string[], method = 'GET'): IncomingMessage {
  return { url, method, rawHeaders, socket: { remoteAddress: '10.0.0.9' } } as unknown as IncomingMessage
}

const route = { prefix: '/ws/', url: '/ws/*' } as RouteState
const endpoint = parseEndpoint('10.1.1.1:9000')

test('keeps header lines in order and case, drops hop-by-hop ones and appends forwarding headers', () => {
  const head = buildRequestHead(request('/ws/a?b=1', [
    'Host', 'front', 'Connection', 'keep-alive, Upgrade', 'Upgrade', 'WebSocket', 'Keep-Alive', '5',
    'Transfer-Encoding', 'gzip', 'X-Forwarded-For', '1.2.3.4', 'Content-Length', '0', 'x-Odd-Case', 'v'
  ]), route, { cluster: 'c' }, endpoint)
  assert.equal(head,
    'GET /ws/a?b=1 HTTP/1.1\r\nHost: front\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n' +
    'Content-Length: 0\r\nx-Odd-Case: v\r\nx-forwarded-for: 1.2.3.4, 10.0.0.9\r\nx-forwarded-proto: http\r\n\r\n')
})

test('applies the prefix rewrite and keeps the query', () => {
  const head = buildRequestHead(request('/ws/room?x=1', ['Host', 'front']), route, { cluster: 'c', prefixRewrite: '/socket/' }, endpoint)
  assert.match(head, /^GET \/socket\/room\?x=1 HTTP\/1\.1\r\n/)
})

test('applies an explicit host rewrite before an automatic one', () => {
  assert.match(buildRequestHead(request('/ws/', ['Host', 'front']), route, { cluster: 'c', hostRewrite: 'inner', autoHostRewrite: true }, endpoint), /\r\nHost: inner\r\n/)
  assert.match(buildRequestHead(request('/ws/', ['host', 'front']), route, { cluster: 'c', autoHostRewrite: true }, endpoint), /\r\nhost: 10\.1\.1\.1:9000\r\n/)
})

test('refuses a configured value that would split the head', () => {
  assert.throws(() => buildRequestHead(request('/ws/', ['Host', 'front']), route, { cluster: 'c', hostRewrite: 'a\r\nX-Evil: 1' }, endpoint), /CR, LF/)
})

test('counts the request body forwarded before the answer: Content-Length, else 8 hixie-76 key bytes, else none', () => {
  assert.equal(requestBodyLength(request('/', ['Content-Length', '5'])), 5)
  assert.equal(requestBodyLength(request('/', ['Sec-WebSocket-Key1', '1 2', 'Sec-WebSocket-Key2', '3 4'])), 8)
  assert.equal(requestBodyLength(request('/', ['Sec-WebSocket-Key', 'abc'])), 0)
})
