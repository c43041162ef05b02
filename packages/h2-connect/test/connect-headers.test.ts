import { test } from 'node:test'
import assert from 'node:assert/strict'
import { acceptedAsUpgrade, fromExtendedConnect, toExtendedConnect, toHttp2Response } from '../src/connect-headers.ts'
import { acceptFor } from '../src/websocket-key.ts'

test('turns an HTTP/1.1 upgrade into Envoy\'s extended CONNECT', () => {
  const h = toExtendedConnect({
    host: 'svc:8080',
    upgrade: 'websocket',
    connection: 'keep-alive, Upgrade, x-hop',
    'keep-alive': 'timeout=5',
    'x-hop': '1',
    te: 'trailers',
    'transfer-encoding': 'chunked',
    'proxy-connection': 'x',
    'content-length': '0',
    'sec-websocket-version': '13',
    'x-app': 'a'
  }, { upgradeType: 'websocket', path: '/chat?x=1', secure: false, authority: 'ep:1' })
  assert.deepEqual(h, {
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': 'http',
    ':authority': 'svc:8080',
    ':path': '/chat?x=1',
    'sec-websocket-version': '13',
    'x-app': 'a'
  })
})

test('keeps a non-zero content-length and falls back to the endpoint authority', () => {
  const h = toExtendedConnect({ upgrade: 'foo', connection: 'upgrade', 'content-length': '3' }, { upgradeType: 'foo', path: '/', secure: true, authority: 'ep:443' })
  assert.equal(h['content-length'], '3')
  assert.equal(h[':authority'], 'ep:443')
  assert.equal(h[':scheme'], 'https')
})

test('shapes the 200 to an extended CONNECT as a 101', () => {
  assert.deepEqual(acceptedAsUpgrade({ ':status': 200, 'content-length': '0', 'x-a': 'b' }, 'websocket'), {
    'x-a': 'b', upgrade: 'websocket', connection: 'upgrade'
  })
})

test('maps a 101 to a 200 without upgrade, connection and a zero content-length', () => {
  assert.deepEqual(toHttp2Response(101, { upgrade: 'websocket', connection: 'Upgrade', 'content-length': '0', 'sec-websocket-protocol': 'chat' }), {
    ':status': 200, 'sec-websocket-protocol': 'chat'
  })
  assert.deepEqual(toHttp2Response(201, { 'content-length': '0', 'keep-alive': 'x' }), { ':status': 201, 'content-length': '0' })
})

test('turns an extended CONNECT into an HTTP/1.1-shaped upgrade', () => {
  const down = fromExtendedConnect(
    [':method', 'CONNECT', ':protocol', 'websocket', ':authority', 'a:1', ':path', '/x', 'x-switchyard-original-method', 'POST', 'x-app', '1'],
    'websocket', 'a:1', 'GET')
  assert.deepEqual(down.rawHeaders, ['host', 'a:1', 'x-app', '1', 'upgrade', 'websocket', 'connection', 'upgrade'])
  assert.equal(down.upgradeType, 'websocket')
})

test('computes the RFC 6455 accept', () => {
  assert.equal(acceptFor('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
})
