import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { headerTokens, headersFromRaw, serializeHeaders, stripH2cUpgrade, upgradeTypeOf } from '../src/headers.ts'

test('an upgrade needs the upgrade token in Connection, in any case and list position', () => {
  assert.equal(upgradeTypeOf({ connection: 'keep-alive, Upgrade', upgrade: 'WebSocket' }), 'websocket')
  assert.equal(upgradeTypeOf({ connection: 'UPGRADE', upgrade: ' foo ' }), 'foo')
  assert.equal(upgradeTypeOf({ connection: 'keep-alive', upgrade: 'websocket' }), null)
  assert.equal(upgradeTypeOf({ connection: 'upgrade' }), null)
  assert.equal(upgradeTypeOf({ connection: 'upgrade', upgrade: '' }), null)
  assert.deepEqual(headerTokens(' a ,, B ,'), ['a', 'b'])
})

test('raw headers keep their order and gather repeats', () => {
  assert.deepEqual(headersFromRaw(['Host', 'h', 'X-A', '1', 'x-a', '2']), { host: 'h', 'x-a': ['1', '2'] })
  assert.equal(serializeHeaders({ a: '1', b: ['2', '3'] }), 'a: 1\r\nb: 2\r\nb: 3\r\n')
  assert.throws(() => serializeHeaders({ a: 'x\r\ninjected: 1' }), /CR, LF or NUL/)
})

test('h2c upgrades are stripped with HTTP2-Settings and their Connection tokens', () => {
  const raw = ['Host', 'h', 'Connection', 'Upgrade, HTTP2-Settings, keep-alive', 'Upgrade', 'h2c', 'HTTP2-Settings', 'AAMAAABkAAQ']
  const req = { rawHeaders: raw.slice(), headers: headersFromRaw(raw) } as unknown as IncomingMessage
  assert.equal(stripH2cUpgrade(req), true)
  assert.deepEqual(req.rawHeaders, ['Host', 'h', 'Connection', 'keep-alive'])
  assert.deepEqual(req.headers, { host: 'h', connection: 'keep-alive' })
  assert.equal(upgradeTypeOf(req.headers), null)
  const ws = { rawHeaders: ['Upgrade', 'websocket'], headers: { upgrade: 'websocket' } } as unknown as IncomingMessage
  assert.equal(stripH2cUpgrade(ws), false)
})
