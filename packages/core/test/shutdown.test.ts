import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import Fastify from 'fastify'
import switchyard, { proxy } from '../src/index.ts'

/** An upstream that accepts `Upgrade: foo` and echoes the tunnelled bytes. */
async function fooEcho (): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\n\r\n')
      socket.pipe(socket)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

async function proxyTo (upstream: net.Server, shutdownGracePeriod: number) {
  const app = Fastify()
  await app.register(switchyard, {
    clusters: { foo: { endpoints: [`127.0.0.1:${(upstream.address() as net.AddressInfo).port}`] } },
    upgradeConfigs: [{ upgradeType: 'foo' }],
    shutdownGracePeriod
  })
  app.get('/t', { upstream: { cluster: 'foo' } }, proxy)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as net.AddressInfo).port }
}

/** Opens a `foo` tunnel and resolves once the 101 head has arrived. */
async function openTunnel (port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.write('GET /t HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: foo\r\n\r\n')
  let head = ''
  while (!head.includes('\r\n\r\n')) head += String((await once(socket, 'data'))[0])
  assert.match(head, /^HTTP\/1\.1 101 /)
  return socket
}

test('during the grace period open tunnels keep working and new upgrades get 503', async (t) => {
  const upstream = await fooEcho()
  t.after(() => upstream.close())
  const { app, port } = await proxyTo(upstream, 60_000)
  const tunnel = await openTunnel(port)
  const late = net.connect(port, '127.0.0.1')
  await once(late, 'connect')

  const closing = app.close()
  late.write('GET /t HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: foo\r\n\r\n')
  const [refused] = await once(late, 'data')
  assert.match(String(refused), /^HTTP\/1\.1 503 /)

  tunnel.write('still here')
  const [echoed] = await once(tunnel, 'data')
  assert.equal(String(echoed), 'still here')
  tunnel.end()
  await closing
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active, 0)
})

test('tunnels still open when the grace period ends are closed and close returns', async (t) => {
  const upstream = await fooEcho()
  t.after(() => upstream.close())
  const { app, port } = await proxyTo(upstream, 50)
  const tunnel = await openTunnel(port)
  tunnel.resume()
  const ended = once(tunnel, 'end')
  await app.close()
  await ended
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active, 0)
})
