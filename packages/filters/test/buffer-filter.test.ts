import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FilterStatus } from '@switchyard/core'
import { createBufferFilter } from '../src/index.ts'
import { fakeContext } from './fake-context.ts'

test('holds the headers, stops each chunk, and resumes once the body is complete', () => {
  const filter = createBufferFilter({ maxRequestBytes: 10 })
  const { ctx, rec } = fakeContext({ upgradeType: null, method: 'POST' })
  assert.equal(filter.onRequestHeaders!(ctx, {}, false), FilterStatus.StopIteration)
  assert.equal(filter.onRequestData!(ctx, Buffer.from('abc'), false), FilterStatus.StopIteration)
  assert.equal(rec.resumed, 0)
  // The chain keeps the stopped chunks: with this last one stopped too, resume() sends them all on in order.
  assert.equal(filter.onRequestData!(ctx, Buffer.from('def'), true), FilterStatus.StopIteration)
  assert.equal(rec.resumed, 1)
  assert.equal(rec.toUpstream.length, 0, 'nothing injected: no copy of the body is kept by the filter')
})

test('a request without a body is not held', () => {
  const filter = createBufferFilter({ maxRequestBytes: 10 })
  assert.equal(filter.onRequestHeaders!(fakeContext({ upgradeType: null }).ctx, {}, true), FilterStatus.Continue)
})

test('a body over maxRequestBytes is answered 413 and nothing goes on', () => {
  const filter = createBufferFilter({ maxRequestBytes: 4 })
  const { ctx, rec } = fakeContext({ upgradeType: null })
  filter.onRequestHeaders!(ctx, {}, false)
  assert.equal(filter.onRequestData!(ctx, Buffer.from('abc'), false), FilterStatus.StopIteration)
  assert.equal(filter.onRequestData!(ctx, Buffer.from('de'), false), FilterStatus.StopIteration)
  assert.deepEqual(rec.localReplies.map((r) => [r.status, r.body]), [[413, 'Payload Too Large']])
  assert.equal(rec.toUpstream.length, 0)
})

test('an upgrade never ends its request, so its payload over the limit gets 413 (Envoy)', () => {
  const filter = createBufferFilter({ maxRequestBytes: 1024 })
  const { ctx, rec } = fakeContext()
  assert.equal(filter.onRequestHeaders!(ctx, { upgrade: 'websocket' }, false), FilterStatus.StopIteration)
  assert.equal(filter.onRequestData!(ctx, Buffer.alloc(1024), false), FilterStatus.StopIteration)
  assert.equal(rec.localReplies.length, 0)
  assert.equal(filter.onRequestData!(ctx, Buffer.alloc(1024), false), FilterStatus.StopIteration)
  assert.deepEqual(rec.localReplies.map((r) => r.status), [413])
})

test('refuses a missing or negative maxRequestBytes', () => {
  assert.throws(() => createBufferFilter({} as never), { code: 'SWY_ERR_FILTER_OPTIONS' })
  assert.throws(() => createBufferFilter({ maxRequestBytes: -1 }), { code: 'SWY_ERR_FILTER_OPTIONS' })
})
