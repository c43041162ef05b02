import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Headers } from '@switchyard/core'
import { createHeaderMutationFilter } from '../src/index.ts'
import { fakeContext } from './fake-context.ts'

test('removes, sets and adds request headers in place, and continues', () => {
  const filter = createHeaderMutationFilter({ request: { remove: ['X-Secret'], set: { 'X-Env': 'prod' }, add: { via: 'switchyard' } } })
  const { ctx } = fakeContext({ upgradeType: null })
  const headers: Headers = { 'x-secret': 's', 'x-env': 'dev', via: '1.1 edge' }
  assert.equal(filter.onRequestHeaders!(ctx, headers, true), undefined)
  assert.deepEqual(headers, { 'x-env': 'prod', via: ['1.1 edge', 'switchyard'] })
})

test('edits the 101 of an upgrade like any response', () => {
  const filter = createHeaderMutationFilter({ response: { add: { 'x-tunnel': 'yes' }, remove: ['server'] } })
  const { ctx } = fakeContext()
  const headers: Headers = { upgrade: 'websocket', connection: 'upgrade', server: 'upstream/1.0' }
  assert.equal(filter.onResponseHeaders!(ctx, 101, headers, false), undefined)
  assert.deepEqual(headers, { upgrade: 'websocket', connection: 'upgrade', 'x-tunnel': 'yes' })
})

test('has no data callbacks, so a tunnel through it stays a straight write', () => {
  const filter = createHeaderMutationFilter({ request: { set: { a: '1' } }, response: { set: { b: '2' } } })
  assert.equal(filter.onRequestData, undefined)
  assert.equal(filter.onResponseData, undefined)
  assert.equal(createHeaderMutationFilter({ request: { set: { a: '1' } } }).onResponseHeaders, undefined)
})

test('refuses header names and values that cannot be sent', () => {
  assert.throws(() => createHeaderMutationFilter({ request: { set: { 'bad name': 'x' } } }), { code: 'SWY_ERR_FILTER_OPTIONS' })
  assert.throws(() => createHeaderMutationFilter({ response: { add: { ok: 'evil\r\nset-cookie: x' } } }), { code: 'SWY_ERR_FILTER_OPTIONS' })
})
