import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { proxy } from '@switchyard/core'
import { createWebSocketFrameLimitFilter, type WebSocketFrameLimitOptions } from '@switchyard/filters'
import type { TestContext } from 'node:test'
import { closeOf, echoUpstream, openWs, startFiltersProxy, type EchoUpstream } from '../helpers/filters-upstreams.ts'

async function limited (t: TestContext, options: WebSocketFrameLimitOptions, deflate = false): Promise<{ port: number, up: EchoUpstream }> {
  const up = await echoUpstream(t, { perMessageDeflate: deflate })
  const { port } = await startFiltersProxy(t, {
    clusters: { echo: { endpoints: [`127.0.0.1:${up.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    filters: [createWebSocketFrameLimitFilter(options)]
  }, (app) => { app.get('/x', { upstream: { cluster: 'echo' } }, proxy) })
  return { port, up }
}

const nextMessage = async (ws: import('ws').WebSocket): Promise<string> => String((await once(ws, 'message'))[0])

test('a client message over maxMessageBytes closes the client and the upstream with 1009', async (t) => {
  const { port, up } = await limited(t, { maxMessageBytes: 1024 })
  const { ws } = await openWs(`ws://127.0.0.1:${port}/x`)
  ws.send('fits')
  assert.equal(await nextMessage(ws), 'fits')
  const upstreamClose = up.nextClose()
  const clientClose = closeOf(ws)
  ws.send(Buffer.alloc(2048))
  assert.equal((await clientClose).code, 1009)
  assert.equal((await upstreamClose).code, 1009)
})

test('an upstream message over maxMessageBytes closes the client and the upstream with 1009', async (t) => {
  const { port, up } = await limited(t, { maxMessageBytes: 1024 })
  const { ws } = await openWs(`ws://127.0.0.1:${port}/x`)
  const upstreamClose = up.nextClose()
  const clientClose = closeOf(ws)
  ws.send('big:5000')
  assert.equal((await clientClose).code, 1009)
  assert.equal((await upstreamClose).code, 1009)
})

test('more messages per second than allowed closes the connection with 1008', async (t) => {
  const { port, up } = await limited(t, { maxMessagesPerSecond: 3 })
  const { ws } = await openWs(`ws://127.0.0.1:${port}/x`)
  const upstreamClose = up.nextClose()
  const clientClose = closeOf(ws)
  for (let i = 0; i < 5; i++) ws.send(`m${i}`)
  assert.equal((await clientClose).code, 1008)
  assert.equal((await upstreamClose).code, 1008)
})

test('with permessage-deflate a highly compressible message passes on its compressed size', async (t) => {
  const { port } = await limited(t, { maxMessageBytes: 1024 }, true)
  const { ws, headers } = await openWs(`ws://127.0.0.1:${port}/x`, { perMessageDeflate: true })
  t.after(() => ws.terminate())
  assert.match(String(headers['sec-websocket-extensions']), /permessage-deflate/)
  const text = 'z'.repeat(20_000)
  ws.send(text)
  assert.equal(await nextMessage(ws), text)
})

test('with inflate the same message is closed with 1009 on its inflated size', async (t) => {
  const { port, up } = await limited(t, { maxMessageBytes: 1024, inflate: true, maxInflatedBytes: 10_000 }, true)
  const { ws } = await openWs(`ws://127.0.0.1:${port}/x`, { perMessageDeflate: true })
  ws.send('y'.repeat(5_000))
  assert.equal(await nextMessage(ws), 'y'.repeat(5_000), 'a message under the inflated bound passes')
  const upstreamClose = up.nextClose()
  const clientClose = closeOf(ws)
  ws.send('z'.repeat(20_000))
  assert.equal((await clientClose).code, 1009)
  assert.equal((await upstreamClose).code, 1009)
})

test('an unmasked client frame gets a 1002 close frame on a raw socket', async (t) => {
  const { port, up } = await limited(t, {})
  const socket = net.connect(port, '127.0.0.1')
  t.after(() => socket.destroy())
  await once(socket, 'connect')
  socket.write('GET /x HTTP/1.1\r\nhost: front\r\nconnection: Upgrade\r\nupgrade: websocket\r\n' +
    'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  let received = Buffer.alloc(0)
  socket.on('data', (c: Buffer) => { received = Buffer.concat([received, c]) })
  while (received.indexOf('\r\n\r\n') === -1) await once(socket, 'data')
  assert.match(received.toString('latin1'), /^HTTP\/1\.1 101 /)
  const upstreamClose = up.nextClose()
  socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69])) // "hi", unmasked: RFC 6455 §5.1 forbids it
  await once(socket, 'end')
  const frames = received.subarray(received.indexOf('\r\n\r\n') + 4)
  assert.deepEqual([...frames], [0x88, 0x02, 0x03, 0xea], 'close 1002, unmasked, toward the client')
  assert.equal((await upstreamClose).code, 1002)
})
