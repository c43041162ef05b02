import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { proxy } from '@switchyard/core'
import { createBufferFilter } from '@switchyard/filters'
import { echoUpstream, rawTypeUpstream, startFiltersProxy } from '../helpers/filters-upstreams.ts'

/** Sends an upgrade head and `payload` at once on a raw socket; resolves with all bytes read until the close. */
async function upgradeWithPayload (port: number, path: string, type: string, payload: Buffer, untilBytes?: number): Promise<{ text: string, socket: net.Socket }> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.on('error', () => {})
  socket.write(Buffer.concat([
    Buffer.from(`GET ${path} HTTP/1.1\r\nhost: front\r\nconnection: Upgrade\r\nupgrade: ${type}\r\n` +
      'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
    payload
  ]))
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  if (untilBytes === undefined) await once(socket, 'close')
  else while (received.indexOf('\r\n\r\n') === -1) await once(socket, 'data')
  return { text: received, socket }
}

test('with the buffer filter in the default chain a WebSocket sending 2,048 bytes through a 1,024-byte limit gets 413, while a router-only type passes them intact', async (t) => {
  const ws = await echoUpstream(t)
  const foo = await rawTypeUpstream(t)
  const { port } = await startFiltersProxy(t, {
    clusters: { ws: { endpoints: [`127.0.0.1:${ws.port}`] }, foo: { endpoints: [`127.0.0.1:${foo.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo', filters: [] }],
    filters: [createBufferFilter({ maxRequestBytes: 1024 })]
  }, (app) => {
    app.get('/ws', { upstream: { cluster: 'ws' } }, proxy)
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const payload = Buffer.alloc(2048)
  for (let i = 0; i < payload.length; i++) payload[i] = i % 251

  // Envoy's websocket_integration_test: the HTTP-only filter sees the upgrade payload as a body that never ends.
  const refused = await upgradeWithPayload(port, '/ws', 'websocket', payload)
  assert.match(refused.text, /^HTTP\/1\.1 413 /)
  assert.match(refused.text, /Payload Too Large$/)
  assert.equal(ws.requests.length, 0, 'the upstream never saw the handshake')

  // The same bytes on a type whose chain is the router alone.
  const passed = await upgradeWithPayload(port, '/foo', 'foo', payload, 0)
  t.after(() => passed.socket.destroy())
  assert.match(passed.text, /^HTTP\/1\.1 101 /)
  const got = await foo.receivedBytes(payload.length)
  assert.ok(got.equals(payload), 'the 2,048 bytes arrive intact')
})

test('a plain request body under the limit is proxied whole, and one over it gets 413', async (t) => {
  const up = await echoUpstream(t)
  const { port } = await startFiltersProxy(t, {
    clusters: { echo: { endpoints: [`127.0.0.1:${up.port}`] } },
    filters: [createBufferFilter({ maxRequestBytes: 1024 })]
  }, (app) => { app.post('/x', { upstream: { cluster: 'echo' } }, proxy) })

  const small = 'a'.repeat(1000)
  const ok = await fetch(`http://127.0.0.1:${port}/x`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: small })
  assert.equal(ok.status, 200)
  assert.equal((await ok.json() as { body: string }).body, small)
  const big = await fetch(`http://127.0.0.1:${port}/x`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'b'.repeat(2048) })
  assert.equal(big.status, 413)
  assert.equal(await big.text(), 'Payload Too Large')
  assert.equal(up.requests.length, 1, 'only the small body reached the upstream')
})
