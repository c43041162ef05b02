import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseResponseHead } from '@switchyard/core/internal'
import { closingHead } from '../src/closing-head.ts'

test('relays a refusal head with Connection: close in place of the upstream\'s connection headers', () => {
  const head = parseResponseHead(Buffer.from('HTTP/1.1 426 Upgrade Required\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A: b\r\n\r\n'))!
  assert.equal(closingHead(head), 'HTTP/1.1 426 Upgrade Required\r\nX-A: b\r\nConnection: close\r\n\r\n')
})
