import { test } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import net from 'node:net'
import { once } from 'node:events'
import { Tunnel } from '../src/tunnel.ts'

/** A connected pair of loopback sockets: [outer end, proxy end]. */
async function socketPair (): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const outer = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true })
  const [inner] = await once(server, 'connection') as [net.Socket]
  server.close()
  await once(outer, 'connect')
  return [outer, inner]
}

async function tunnelled () {
  const [client, down] = await socketPair()
  const [app, up] = await socketPair()
  let onClose!: (reason: string) => void
  const closed = new Promise<string>((resolve) => { onClose = resolve })
  const tunnel = new Tunnel(down, up, { onClose: (reason) => onClose(reason) })
  return { client, app, down, up, closed, tunnel }
}

test('holds about one high-water mark when the client stops reading while the upstream floods', async () => {
  const t = await tunnelled()
  t.client.pause()
  const chunk = Buffer.alloc(64 * 1024, 7)
  const total = 32 * 1024 * 1024
  let written = 0
  const flood = (): void => {
    while (written < total) {
      written += chunk.length
      if (!t.app.write(chunk)) { t.app.once('drain', flood); return }
    }
    t.app.end()
  }
  flood()
  await once(t.up, 'pause')
  // What the proxy holds in memory for this direction: its unsent writes to the client.
  assert.ok(t.down.writableLength <= 2 * 64 * 1024, `held ${t.down.writableLength} bytes`)
  assert.ok(t.tunnel.bytesFromUpstream < total, 'the tunnel stopped reading the upstream')
  let received = 0
  t.client.on('data', (d: Buffer) => { received += d.length })
  t.client.resume()
  await once(t.client, 'end')
  assert.equal(received, total, 'every byte arrives once the client reads again')
  t.client.end()
  assert.equal(await t.closed, 'upstream')
})

test('carries a half-close each way and keeps the other direction open', async () => {
  const t = await tunnelled()
  t.client.end('last words')
  let atApp = ''
  t.app.on('data', (d) => { atApp += d })
  await once(t.app, 'end')
  assert.equal(atApp, 'last words')
  t.app.write('still talking')
  const [reply] = await once(t.client, 'data')
  assert.equal(String(reply), 'still talking')
  t.app.end()
  await once(t.client, 'end')
  assert.equal(await t.closed, 'downstream')
})

test('an upstream reset resets the client after the data already sent', async () => {
  const t = await tunnelled()
  let atClient = ''
  const errors: string[] = []
  t.client.on('error', (err: Error & { code?: string }) => errors.push(String(err.code)))
  t.client.on('data', (d) => { atClient += d })
  t.app.write('before reset')
  await once(t.client, 'data')
  const clientClosed = new Promise((resolve) => t.client.once('close', resolve))
  t.app.resetAndDestroy()
  await clientClosed
  assert.equal(atClient, 'before reset')
  assert.deepEqual(errors, ['ECONNRESET'])
  assert.equal(await t.closed, 'upstream')
})

test('destroy closes both sides and reports the reason', async () => {
  const t = await tunnelled()
  t.client.resume()
  t.app.resume()
  const ended = Promise.all([once(t.client, 'end'), once(t.app, 'end')])
  t.tunnel.destroy(undefined, 'idle_timeout')
  await ended
  assert.equal(await t.closed, 'idle_timeout')
})

test('an idle tunnel is closed after the idle timeout', async () => {
  const [client, down] = await socketPair()
  const [app, up] = await socketPair()
  client.resume()
  app.resume()
  const ended = Promise.all([once(client, 'end'), once(app, 'end')])
  const reason = await new Promise<string>((resolve) => {
    const tunnel = new Tunnel(down, up, { idleTimeout: 50, onClose: (r) => resolve(r) })
    assert.ok(tunnel)
  })
  assert.equal(reason, 'idle_timeout')
  await ended
  client.destroy()
  app.destroy()
})

// RFC 9113 §8.1: a peer that has sent its whole answer may stop the request with RST_STREAM NO_ERROR.
// Node then keeps the stream open until its queued writes finish, which they never do: the tunnel
// stayed open for good (a sidecar whose upstream died mid-stream did this to the front).
test('closes an HTTP/2 upstream that ended its side and then sent RST_STREAM NO_ERROR while writes were queued', { timeout: 5000 }, async (t) => {
  const server = http2.createServer()
  server.on('stream', (stream) => {
    stream.pause() // never read: the client's writes stay queued behind the flow-control window
    stream.respond({ ':status': 200 })
    stream.end('bye')
    stream.close(http2.constants.NGHTTP2_NO_ERROR)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const session = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`)
  t.after(() => { session.destroy(); server.close() })
  const up = session.request({ ':method': 'POST', ':path': '/' })
  up.on('error', () => {})
  up.write(Buffer.alloc(1024 * 1024))
  // Everything has arrived, unread: the answer, its END_STREAM and the RST_STREAM.
  await once(up, 'aborted')
  assert.equal(up.writableFinished, false)

  const [client, down] = await socketPair()
  let atClient = ''
  client.on('data', (d) => { atClient += d })
  client.on('end', () => client.end())
  const clientClosed = new Promise((resolve) => client.once('close', resolve))
  const closed = new Promise<string>((resolve) => new Tunnel(down, up, { onClose: (reason) => resolve(reason) }))
  assert.equal(await closed, 'upstream')
  await clientClosed
  assert.equal(atClient, 'bye')
})
