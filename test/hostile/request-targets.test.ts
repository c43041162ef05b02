import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rawExchange, type RawPart } from '../helpers/hostile.ts'
import { headerOf } from '../helpers/echo-upstream.ts'
import { stat } from '../helpers/start-proxy.ts'
import { startWatchedEdgeFront, wsHead } from '../helpers/edge-front.ts'

/**
 * Request targets and Host headers at an HTTP/1.1 front, on a plain proxied route, a new-style WebSocket
 * route and a legacy `useWebsocket` route alike. RFC 9112 §3.2.2: absolute-form is accepted, routed by its
 * path, and its authority becomes the Host. RFC 9112 §3.2: more than one Host line, or an invalid one, is
 * a 400 that nothing behind the front ever sees. Each test ends with every socket closed, the live handles
 * back at the baseline, and `app.close()` returned within the grace period plus one second.
 */

const INVALID = 'downstream_rq_invalid_authority'

type Kind = 'plain' | 'new style' | 'legacy'

function request (kind: Kind, target: string, hostLines: string): string {
  if (kind === 'plain') return `GET ${target} HTTP/1.1\r\n${hostLines}connection: close\r\n\r\n`
  const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
  return `GET ${target} HTTP/1.1\r\n${hostLines}${upgrade}\r\n`
}

const pathOf: Record<Kind, string> = { plain: '/hello', 'new style': '/ws', legacy: '/legacy' }
const exchange = (kind: Kind): RawPart[] => kind === 'plain' ? [] : ['AWAIT_HEAD', 'PING', 'END']

for (const kind of ['plain', 'new style', 'legacy'] as const) {
  test(`an absolute-form ${kind} request is routed by its path, its authority becoming the Host upstream`, { timeout: 10_000 }, async (t) => {
    const front = await startWatchedEdgeFront(t)
    const authority = `127.0.0.1:${front.port}`
    const result = await rawExchange(front.port, [request(kind, `http://${authority}${pathOf[kind]}?room=1`, 'Host: elsewhere.test\r\n'), ...exchange(kind)])
    assert.equal(result.status, kind === 'plain' ? 200 : 101, result.data.slice(0, 200))
    if (kind !== 'plain') assert.match(result.data, /PING$/, 'the tunnel echoes')
    const head = front.upstream.heads.at(-1)!
    assert.match(head, new RegExp(`^GET ${pathOf[kind]}\\?room=1 HTTP/1\\.1\\r\\n`), 'origin-form upstream')
    assert.equal(headerOf(head, 'host'), authority, 'the authority is the Host')
    assert.equal(head.match(/\r\nhost:/gi)?.length, 1, 'one Host line')
    await front.settled()
  })
}

test('an absolute-form target without a path is routed as / and a query alone keeps its query', { timeout: 10_000 }, async (t) => {
  const front = await startWatchedEdgeFront(t)
  const bare = await rawExchange(front.port, [request('plain', `http://127.0.0.1:${front.port}`, 'Host: x\r\n')])
  assert.equal(bare.status, 404, 'routed as / (no route there)')
  const query = await rawExchange(front.port, [request('plain', `HTTP://127.0.0.1:${front.port}?a=1`, 'Host: x\r\n')])
  assert.equal(query.status, 404, 'routed as /?a=1')
  assert.equal(front.upstream.heads.length, 0)
  await front.settled()
})

/** Host values (or Host lines) every route must refuse with 400. */
const malformed: Array<[string, string]> = [
  ['a space in the Host', 'Host: a b\r\n'],
  ['an unbalanced bracket', 'Host: [::1\r\n'],
  ['a closing bracket alone', 'Host: ::1]:80\r\n'],
  ['userinfo in the Host', 'Host: user:pw@front.test\r\n'],
  ['a Host over 255 characters', `Host: ${'a'.repeat(256)}\r\n`],
  ['two Host lines', 'Host: front.test\r\nHost: other.test\r\n'],
  ['a port that is not a number', 'Host: front.test:80a\r\n'],
  ['a port over 65535', 'Host: front.test:65536\r\n'],
  ['a slash in the Host', 'Host: front.test/x\r\n']
]

for (const kind of ['plain', 'new style', 'legacy'] as const) {
  test(`a malformed Host on a ${kind} route gets 400, is counted and never reaches the upstream`, { timeout: 15_000 }, async (t) => {
    const front = await startWatchedEdgeFront(t)
    for (const [name, hostLines] of malformed) {
      const before = stat(front.app, INVALID)
      const result = await rawExchange(front.port, [request(kind, pathOf[kind], hostLines), ...exchange(kind)])
      assert.equal(result.status, 400, `${name}: ${JSON.stringify(result.data.slice(0, 120))}`)
      assert.match(result.data, /\r\nconnection: close\r\n/i, `${name}: the connection closes`)
      assert.equal(stat(front.app, INVALID), before + 1, `${name}: counted`)
    }
    const userinfo = await rawExchange(front.port, [request(kind, `http://user:pw@127.0.0.1:${front.port}${pathOf[kind]}`, 'Host: x\r\n'), ...exchange(kind)])
    assert.equal(userinfo.status, 400, 'userinfo in an absolute-form target')
    assert.equal(front.upstream.connections, 0, 'the upstream never saw a connection')
    await front.settled()
  })

  test(`well-formed Hosts on a ${kind} route are forwarded as sent`, { timeout: 10_000 }, async (t) => {
    const front = await startWatchedEdgeFront(t)
    for (const host of ['[::1]:8080', '[::1]', 'front.test', 'front.test:443', '10.0.0.1:80', 'a'.repeat(255), 'xn--bcher-kva.example']) {
      const result = await rawExchange(front.port, [request(kind, pathOf[kind], `Host: ${host}\r\n`), ...exchange(kind)])
      assert.equal(result.status, kind === 'plain' ? 200 : 101, `${host}: ${result.data.slice(0, 120)}`)
      assert.equal(headerOf(front.upstream.heads.at(-1)!, 'host'), host)
    }
    assert.equal(stat(front.app, INVALID), 0)
    await front.settled()
  })
}

test('a malformed Host on a keep-alive connection ends it after the 400: nothing after it is read as a request', { timeout: 10_000 }, async (t) => {
  const front = await startWatchedEdgeFront(t)
  const result = await rawExchange(front.port, [
    'GET /hello HTTP/1.1\r\nHost: a b\r\n\r\nGET /hello HTTP/1.1\r\nHost: front.test\r\n\r\n'
  ])
  assert.equal(result.status, 400)
  assert.equal(result.data.match(/HTTP\/1\.1 /g)?.length, 1, 'one response only')
  assert.equal(front.upstream.connections, 0)
  await front.settled()
})

test('an upgrade with a malformed Host gets 400 even with bytes after its head, and its socket is freed', { timeout: 10_000 }, async (t) => {
  const front = await startWatchedEdgeFront(t)
  const result = await rawExchange(front.port, [wsHead('/ws', 'a b') + 'early bytes', 'AWAIT_HEAD', 'more', 'END'])
  assert.equal(result.status, 400)
  assert.equal(front.upstream.connections, 0)
  await front.settled()
})
