import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileHashPolicy, cookieValue, type HashInput } from '../../src/cluster/hash-policy.ts'
import { hash32 } from '../../src/cluster/hash.ts'
import { checkRouteOptions } from '../../src/route-options.ts'

const input = (over: Partial<HashInput> = {}): HashInput => ({ headers: {}, url: '/chat', ...over })

test('a header policy hashes the header value; repeated values hash the same in any order', () => {
  const policy = compileHashPolicy([{ header: 'X-User' }])
  assert.equal(policy(input({ headers: { 'x-user': 'ada' } })).hash, hash32('ada'))
  assert.notEqual(policy(input({ headers: { 'x-user': 'bob' } })).hash, hash32('ada'))
  assert.equal(policy(input({ headers: { 'x-user': ['b', 'a'] } })).hash, policy(input({ headers: { 'x-user': ['a', 'b'] } })).hash)
  assert.equal(policy(input()).hash, undefined, 'no header, no hash: the balancer picks at random')
})

test('the first policy that yields a value is hashed', () => {
  const policy = compileHashPolicy([{ header: 'x-user' }, { queryParameter: 'room' }, { sourceIp: true }])
  assert.equal(policy(input({ headers: { 'x-user': 'ada' }, url: '/c?room=7', remoteAddress: '10.1.1.1' })).hash, hash32('ada'))
  assert.equal(policy(input({ url: '/c?x=1&room=7', remoteAddress: '10.1.1.1' })).hash, hash32('7'))
  assert.equal(policy(input({ url: '/c?x=1', remoteAddress: '10.1.1.1' })).hash, hash32('10.1.1.1'))
  assert.deepEqual(policy(input({ url: '/c' })), {})
})

test('a query parameter policy takes the first value, decoded, and an empty value counts', () => {
  const policy = compileHashPolicy([{ queryParameter: 'room' }])
  assert.equal(policy(input({ url: '/c?room=a%20b&room=z' })).hash, hash32('a b'))
  assert.equal(policy(input({ url: '/c?room=' })).hash, hash32(''))
  assert.equal(policy(input({ url: '/c?rooms=1' })).hash, undefined)
})

test('a cookie policy hashes the cookie, quoted or not, and sets none when the request has one', () => {
  const policy = compileHashPolicy([{ cookie: { name: 'sticky', ttl: 3600000, path: '/' } }])
  const r = policy(input({ headers: { cookie: 'a=1; sticky="abc"; b=2' } }))
  assert.equal(r.hash, hash32('abc'))
  assert.equal(r.setCookie, undefined)
  assert.equal(policy(input({ headers: { cookie: 'sticky=abc' } })).hash, hash32('abc'))
})

test('a cookie policy with a ttl generates a sticky cookie, Envoy-style, that the next request hashes to the same value', () => {
  const policy = compileHashPolicy([{ cookie: { name: 'sticky', ttl: 3600000, path: '/socket.io' } }])
  const client = { remoteAddress: '10.0.0.9', remotePort: 50000, localAddress: '10.0.0.1', localPort: 8080 }
  const first = policy(input(client))
  assert.match(first.setCookie ?? '', /^sticky="[0-9a-f]{16}"; Max-Age=3600; Path=\/socket\.io; HttpOnly$/)
  assert.equal(policy(input(client)).setCookie, first.setCookie, 'one connection, one cookie (derived from its addresses)')
  const value = /"([0-9a-f]+)"/.exec(first.setCookie!)![1]!
  const next = policy(input({ headers: { cookie: `sticky="${value}"` }, remoteAddress: '10.0.0.9', remotePort: 50001 }))
  assert.equal(next.hash, first.hash, 'the next request, with the cookie, lands where the first did')
  assert.equal(next.setCookie, undefined)
})

test('a cookie policy without a ttl yields nothing for a request without the cookie; ttl 0 is a session cookie', () => {
  assert.deepEqual(compileHashPolicy([{ cookie: { name: 's' } }])(input()), {})
  const session = compileHashPolicy([{ cookie: { name: 's', ttl: 0 } }])(input({ remoteAddress: '10.0.0.9' }))
  assert.match(session.setCookie ?? '', /^s="[0-9a-f]{16}"; HttpOnly$/)
})

test('cookieValue reads one cookie out of one or several cookie headers', () => {
  assert.equal(cookieValue('a=1;b=2', 'b'), '2')
  assert.equal(cookieValue(['a=1', 'b = "x y"'], 'b'), 'x y')
  assert.equal(cookieValue('ab=1', 'b'), undefined)
  assert.equal(cookieValue(undefined, 'b'), undefined)
})

test('the route schema takes each hash policy kind with terminal, and refuses unknown or malformed ones', () => {
  const ok = (hashPolicy: unknown): boolean => checkRouteOptions({ upstream: { cluster: 'c', hashPolicy } }) === null
  assert.ok(ok([{ header: 'x-user', terminal: true }, { cookie: { name: 'sticky', ttl: 1000, path: '/' } }, { sourceIp: true }, { queryParameter: 'room' }]))
  assert.ok(!ok([]), 'an empty list')
  assert.ok(!ok([{ header: 'x user' }]), 'a header name that is not a token')
  assert.ok(!ok([{ cookie: { name: 'a', path: 'no-slash' } }]), 'a cookie path without a leading slash')
  assert.ok(!ok([{ cookie: { name: 'a', ttl: -1 } }]), 'a negative ttl')
  assert.ok(!ok([{ sourceIp: false }]), 'sourceIp: false')
  assert.ok(!ok([{ header: 'x', bogus: 1 }]), 'an unknown field')
  const problem = checkRouteOptions({ upstream: { cluster: 'c', hashPolicy: [{ queryParameter: '' }] } })
  assert.match(problem?.field ?? '', /^upstream\.hashPolicy/)
})
