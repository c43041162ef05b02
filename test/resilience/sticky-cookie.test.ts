/**
 * The hash policy's generated cookie (Envoy's `hash_policy.cookie` with a ttl): a request without the
 * cookie gets an endpoint and a `Set-Cookie` naming it on its answer — the 101, the plain response, the
 * legacy pipe's 101 — and the next request carrying the cookie lands on the same endpoint. Socket.IO's
 * shape: a polling GET first, then the WebSocket upgrade, must meet one endpoint.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startBackends, tally } from '../helpers/lb-backends.ts'
import { lbModes, plainGet, sendMany, startLbProxy, tunnelModes, upgrade } from '../helpers/lb-proxy.ts'

const hashPolicy = [{ cookie: { name: 'sticky', ttl: 3_600_000, path: '/' } }]
const cookieOf = (setCookie: string | undefined): string => {
  const m = /^sticky="([^"]+)"; Max-Age=3600; Path=\/; HttpOnly$/.exec(setCookie ?? '')
  assert.ok(m !== null, `Set-Cookie: ${setCookie}`)
  return m[1]!
}

for (const mode of lbModes) {
  for (const lbPolicy of ['ringHash', 'maglev'] as const) {
    test(`${lbPolicy}: the first answer sets the sticky cookie and 30 requests with it land on its endpoint (${mode})`, { timeout: 30_000 }, async (t) => {
      const backends = await startBackends(t, 4)
      const lb = await startLbProxy(t, mode, backends, { cluster: { lbPolicy }, upstream: { hashPolicy } })
      const first = await lb.send()
      assert.equal(first.status, mode === 'plain' ? 200 : 101)
      const value = cookieOf(first.headers['set-cookie'])
      const next = await sendMany(lb, 30, () => ({ headers: { cookie: `sticky="${value}"` } }))
      assert.deepEqual(tally(next.map((a) => a.backend!)), { [first.backend!]: 30 })
      for (const a of next) assert.equal(a.headers['set-cookie'], undefined, 'no new cookie for a request that has one')
      // Other clients, other cookies: more than one endpoint is in use.
      const others = await sendMany(lb, 20)
      assert.ok(new Set(others.map((a) => a.backend)).size > 1, 'every client got the same endpoint')
    })
  }
}

for (const mode of tunnelModes) {
  test(`Socket.IO's polling GET then its WebSocket upgrade land on one endpoint, 20 clients (${mode})`, { timeout: 30_000 }, async (t) => {
    const backends = await startBackends(t, 4)
    // The plain half of the route: in legacy mode too, a GET without Upgrade is proxied as a request.
    const lb = await startLbProxy(t, mode, backends, { cluster: { lbPolicy: 'ringHash' }, upstream: { hashPolicy } })
    const landed = new Set<string>()
    for (let i = 0; i < 20; i++) {
      const poll = await plainGet(lb.port, { path: '/socket.io/?EIO=4&transport=polling' })
      assert.equal(poll.status, 200)
      const cookie = `sticky="${cookieOf(poll.headers['set-cookie'])}"`
      const ws = await upgrade(t, lb.port, { path: '/socket.io/?EIO=4&transport=websocket', headers: { cookie } })
      assert.equal(ws.status, 101)
      assert.equal(ws.backend, poll.backend, `client ${i}: polled ${poll.backend}, upgraded on ${ws.backend}`)
      landed.add(ws.backend!)
    }
    assert.ok(landed.size > 1, 'every client got the same endpoint')
  })
}
