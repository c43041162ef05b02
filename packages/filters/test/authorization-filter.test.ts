import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FilterStatus } from '@switchyard/core'
import { createAuthorizationFilter } from '../src/index.ts'
import { fakeContext } from './fake-context.ts'

test('a valid bearer token continues and nothing is answered', () => {
  const filter = createAuthorizationFilter({ bearerTokens: ['t0ken'] })
  const { ctx, rec } = fakeContext()
  assert.equal(filter.onRequestHeaders!(ctx, { authorization: 'Bearer t0ken' }, false), FilterStatus.Continue)
  assert.equal(rec.localReplies.length, 0)
})

test('missing credentials are answered 401 with www-authenticate, and iteration stops', () => {
  const filter = createAuthorizationFilter({ bearerTokens: ['t0ken'] })
  const { ctx, rec } = fakeContext()
  assert.equal(filter.onRequestHeaders!(ctx, {}, false), FilterStatus.StopIteration)
  assert.deepEqual(rec.localReplies, [{ status: 401, body: undefined, headers: { 'www-authenticate': 'Bearer realm="switchyard"' } }])
})

test('wrong credentials are answered 403', () => {
  const filter = createAuthorizationFilter({ bearerTokens: ['t0ken'], apiKeys: { header: 'X-Api-Key', keys: ['k1'] } })
  const { ctx, rec } = fakeContext({ upgradeType: null })
  assert.equal(filter.onRequestHeaders!(ctx, { authorization: 'Bearer nope' }, true), FilterStatus.StopIteration)
  assert.equal(filter.onRequestHeaders!(ctx, { 'x-api-key': 'k2' }, true), FilterStatus.StopIteration)
  assert.deepEqual(rec.localReplies.map((r) => r.status), [403, 403])
})

test('a valid API key continues, and the challenge names the key header when it is the only scheme', () => {
  const filter = createAuthorizationFilter({ apiKeys: { header: 'X-Api-Key', keys: ['k1'] } })
  const { ctx, rec } = fakeContext()
  assert.equal(filter.onRequestHeaders!(ctx, { 'x-api-key': 'k1' }, false), FilterStatus.Continue)
  filter.onRequestHeaders!(ctx, {}, false)
  assert.equal(rec.localReplies[0]!.headers!['www-authenticate'], 'ApiKey realm="switchyard", header="x-api-key"')
})

test('an async verify parks the headers with a Promise and settles to Continue or a refusal', async () => {
  const filter = createAuthorizationFilter({
    verify: async (_request, headers) => headers.cookie === 'session=ok' ? true : headers.cookie === undefined ? { status: 401 } : false
  })
  const { ctx, rec } = fakeContext()
  const allowed = filter.onRequestHeaders!(ctx, { cookie: 'session=ok' }, false)
  assert.ok(allowed instanceof Promise)
  assert.equal(await allowed, FilterStatus.Continue)
  assert.equal(await filter.onRequestHeaders!(ctx, { cookie: 'session=bad' }, false), FilterStatus.StopIteration)
  assert.equal(await filter.onRequestHeaders!(ctx, {}, false), FilterStatus.StopIteration)
  assert.deepEqual(rec.localReplies.map((r) => r.status), [403, 401])
})

test('a sync verify answers without a Promise', () => {
  const filter = createAuthorizationFilter({ verify: (request) => request.url === '/open' })
  assert.equal(filter.onRequestHeaders!(fakeContext({ url: '/open' }).ctx, {}, false), FilterStatus.Continue)
  assert.equal(filter.onRequestHeaders!(fakeContext({ url: '/closed' }).ctx, {}, false), FilterStatus.StopIteration)
})

test('has no data callbacks', () => {
  const filter = createAuthorizationFilter({ bearerTokens: ['t'] })
  assert.equal(filter.onRequestData, undefined)
  assert.equal(filter.onResponseData, undefined)
})

test('refuses a configuration with no way to authorize', () => {
  assert.throws(() => createAuthorizationFilter({}), { code: 'SWY_ERR_FILTER_OPTIONS' })
  assert.throws(() => createAuthorizationFilter({ bearerTokens: [] }), { code: 'SWY_ERR_FILTER_OPTIONS' })
})
