import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy } from '@switchyard/core'
import { createAuthorizationFilter, createHeaderMutationFilter } from '@switchyard/filters'
import { echoUpstream, openWs, startFiltersProxy } from '../helpers/filters-upstreams.ts'

test('header mutation edits a proxied request and response, and the 101 of a WebSocket upgrade', async (t) => {
  const up = await echoUpstream(t)
  const { port } = await startFiltersProxy(t, {
    clusters: { echo: { endpoints: [`127.0.0.1:${up.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    filters: [createHeaderMutationFilter({
      request: { set: { 'x-front': 'switchyard' }, remove: ['x-secret'] },
      response: { add: { 'x-served-by': 'front' } }
    })]
  }, (app) => { app.get('/x', { upstream: { cluster: 'echo' } }, proxy) })

  const res = await fetch(`http://127.0.0.1:${port}/x`, { headers: { 'x-secret': 'shh' } })
  assert.equal(res.headers.get('x-served-by'), 'front')
  const seen = await res.json() as { headers: Record<string, string> }
  assert.equal(seen.headers['x-front'], 'switchyard')
  assert.equal(seen.headers['x-secret'], undefined)

  const { ws, status, headers } = await openWs(`ws://127.0.0.1:${port}/x`, { headers: { 'x-secret': 'shh' } })
  t.after(() => ws.terminate())
  assert.equal(status, 101)
  assert.equal(headers['x-served-by'], 'front')
  const upgrade = up.requests.at(-1)!
  assert.equal(upgrade.headers['x-front'], 'switchyard')
  assert.equal(upgrade.headers['x-secret'], undefined)
  ws.send('through')
  const [echo] = await new Promise<[Buffer]>((resolve) => ws.once('message', (d: Buffer) => resolve([d])))
  assert.equal(String(echo), 'through')
})

test('authorization refuses WebSocket handshakes and plain requests locally: 401, 403, and none reach the upstream', async (t) => {
  const up = await echoUpstream(t)
  const { port } = await startFiltersProxy(t, {
    clusters: { echo: { endpoints: [`127.0.0.1:${up.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    filters: [createAuthorizationFilter({ bearerTokens: ['s3cret'] })]
  }, (app) => { app.get('/x', { upstream: { cluster: 'echo' } }, proxy) })

  const missing = await openWs(`ws://127.0.0.1:${port}/x`)
  assert.equal(missing.status, 401)
  assert.equal(missing.headers['www-authenticate'], 'Bearer realm="switchyard"')
  const wrong = await openWs(`ws://127.0.0.1:${port}/x`, { headers: { authorization: 'Bearer guess' } })
  assert.equal(wrong.status, 403)
  const plain = await fetch(`http://127.0.0.1:${port}/x`)
  assert.equal(plain.status, 401)
  await plain.arrayBuffer()
  assert.equal(up.requests.length, 0, 'nothing reached the upstream')

  const ok = await openWs(`ws://127.0.0.1:${port}/x`, { headers: { authorization: 'Bearer s3cret' } })
  t.after(() => ok.ws.terminate())
  assert.equal(ok.status, 101)
  assert.equal(up.requests.length, 1)
})

test('an async verify holds the handshake until it settles, then the tunnel carries messages', async (t) => {
  const up = await echoUpstream(t)
  let calls = 0
  const { port } = await startFiltersProxy(t, {
    clusters: { echo: { endpoints: [`127.0.0.1:${up.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    filters: [createAuthorizationFilter({
      verify: async (request) => {
        calls++
        await new Promise<void>((resolve) => setImmediate(resolve))
        return request.headers['x-ticket'] === 'valid' ? true : { status: 401 }
      }
    })]
  }, (app) => { app.get('/x', { upstream: { cluster: 'echo' } }, proxy) })

  const refused = await openWs(`ws://127.0.0.1:${port}/x`)
  assert.equal(refused.status, 401)
  const { ws, status } = await openWs(`ws://127.0.0.1:${port}/x`, { headers: { 'x-ticket': 'valid' } })
  t.after(() => ws.terminate())
  assert.equal(status, 101)
  assert.equal(calls, 2)
  ws.send('after verify')
  const [echo] = await new Promise<[Buffer]>((resolve) => ws.once('message', (d: Buffer) => resolve([d])))
  assert.equal(String(echo), 'after verify')
})
