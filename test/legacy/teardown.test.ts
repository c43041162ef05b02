import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type net from 'node:net'
import { proxy } from '@switchyard/core'
import { legacyCloses, rawUpstream, readHead, startLegacyProxy, SWITCHING } from '../helpers/legacy-net.ts'
import { rawTextClient, wsUpgradeHead } from '../helpers/raw-client.ts'

interface Accepted { socket: net.Socket, received: () => string }

/** A raw upstream that accepts every upgrade; `next()` resolves with the next accepted connection. */
async function acceptingUpstream (t: TestContext): Promise<{ port: number, next: () => Promise<Accepted> }> {
  const queue: Accepted[] = []
  const waiting: Array<(a: Accepted) => void> = []
  const port = await rawUpstream(t, async (socket) => {
    socket.on('error', () => {})
    const { rest } = await readHead(socket)
    let received = rest.toString('latin1')
    socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
    socket.write(SWITCHING)
    const accepted = { socket, received: () => received }
    const w = waiting.shift()
    if (w !== undefined) w(accepted)
    else queue.push(accepted)
  })
  return {
    port,
    next: () => {
      const a = queue.shift()
      return a !== undefined ? Promise.resolve(a) : new Promise((resolve) => waiting.push(resolve))
    }
  }
}

for (const trustUpstream of [false, true]) {
  const mode = trustUpstream ? ' (trustUpstream)' : ''

  async function setup (t: TestContext, idleTimeout?: number) {
    const upstream = await acceptingUpstream(t)
    const proxyServer = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${upstream.port}`] } } }, (app) => {
      app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c', idleTimeout } }, proxy)
    }, { trustUpstream })
    return { upstream, ...proxyServer, closes: legacyCloses(t) }
  }

  test(`closes the client after the upstream's pending data when the upstream closes${mode}`, async (t) => {
    const { upstream, port, app, closes } = await setup(t)
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
    const up = await upstream.next()
    await client.until('\r\n\r\n')
    const payload = 'z'.repeat(1 << 20)
    up.socket.end(payload)
    await client.closed
    assert.ok(client.received.endsWith(payload), 'every byte before the close arrived')
    assert.equal(client.error, undefined)
    await closes.waitFor(1)
    assert.equal(app.switchyard.stats().downstream_cx_websocket_active, 0)
  })

  test(`closes the upstream when the client closes${mode}`, async (t) => {
    const { upstream, port, closes, app } = await setup(t)
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
    const up = await upstream.next()
    await client.until('\r\n\r\n')
    client.socket.end('last words')
    await once(up.socket, 'end')
    assert.equal(up.received(), 'last words')
    up.socket.end()
    await once(up.socket, 'close')
    await closes.waitFor(1)
    assert.equal(app.switchyard.stats().downstream_cx_websocket_active, 0)
  })

  test(`carries a half-close from the client and still relays the upstream's answer${mode}`, async (t) => {
    const { upstream, port } = await setup(t)
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat'), { allowHalfOpen: true })
    const up = await upstream.next()
    await client.until('\r\n\r\n')
    client.socket.end('question')
    await once(up.socket, 'end')
    assert.equal(up.received(), 'question')
    // The upstream's write side is still open: its answer reaches the half-closed client.
    up.socket.write('answer after your FIN')
    await client.until('answer after your FIN')
    assert.equal(client.ended, false)
    up.socket.end()
    await client.closed
    assert.equal(client.ended, true)
  })

  test(`carries a half-close from the upstream and still forwards the client's bytes${mode}`, async (t) => {
    const { upstream, port } = await setup(t)
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat'), { allowHalfOpen: true })
    const up = await upstream.next()
    await client.until('\r\n\r\n')
    up.socket.end('goodbye')
    await client.until((s) => s.endsWith('goodbye') && client.ended)
    client.socket.write('one more thing')
    await new Promise<void>((resolve) => {
      const check = (): void => { if (up.received() === 'one more thing') resolve(); else up.socket.once('data', () => setImmediate(check)) }
      check()
    })
    client.socket.end()
    await once(up.socket, 'end')
  })

  test(`carries a reset from the upstream to the client${mode}`, async (t) => {
    const { upstream, port } = await setup(t)
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
    const up = await upstream.next()
    await client.until('\r\n\r\n')
    up.socket.resetAndDestroy()
    await client.closed
    assert.equal(client.error?.code, 'ECONNRESET')
  })

  test(`carries a reset from the client to the upstream${mode}`, async (t) => {
    const { upstream, port } = await setup(t)
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
    const up = await upstream.next()
    await client.until('\r\n\r\n')
    let upError: (Error & { code?: string }) | undefined
    up.socket.on('error', (err) => { upError = err })
    // (events.once would reject on the 'error' this test expects.)
    const upClosed = new Promise((resolve) => up.socket.once('close', resolve))
    client.socket.resetAndDestroy()
    await upClosed
    assert.equal(upError?.code, 'ECONNRESET')
  })

  test(`closes both sides after upstream.idleTimeout without a byte${mode}`, async (t) => {
    const { upstream, port, app, closes } = await setup(t, 150)
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
    const up = await upstream.next()
    await client.until('\r\n\r\n')
    await Promise.all([client.closed, once(up.socket, 'end')])
    await closes.waitFor(1)
    assert.equal(app.switchyard.stats().downstream_rq_idle_timeout, 1)
  })
}

test('closes open legacy tunnels when the app closes', async (t) => {
  const upstream = await acceptingUpstream(t)
  const { port, app } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${upstream.port}`] } } }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
  const up = await upstream.next()
  await client.until('\r\n\r\n')
  await app.close()
  await Promise.all([client.closed, once(up.socket, 'end')])
  assert.equal(app.switchyard.stats().downstream_cx_websocket_active, 0)
})
