import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import type net from 'node:net'
import { proxy } from '@switchyard/core'
import { legacyCloses, rawUpstream, startLegacyProxy } from '../helpers/legacy-net.ts'
import { rawTextClient, wsUpgradeHead } from '../helpers/raw-client.ts'
import { listen } from '../helpers/net.ts'

/**
 * The backend of the WebSocket smuggling attack: it has no WebSocket support, answers an upgrade request
 * with 426 and keeps the connection alive, so whatever follows on it is read as the next request — and
 * `/internal` is meant to be reachable only from inside.
 */
async function vulnerableUpstream (t: TestContext): Promise<{ port: number, paths: string[], connectionsClosed: (n: number) => Promise<void> }> {
  const paths: string[] = []
  let closed = 0
  const waiters: Array<() => void> = []
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '')
    if (req.url === '/internal') {
      res.end('internal secret')
      return
    }
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' })
    res.end('upgrade refused')
  })
  server.keepAliveTimeout = 60_000
  server.on('connection', (s: net.Socket) => s.on('close', () => { closed++; for (const w of waiters.splice(0)) w() }))
  const port = await listen(t, server)
  return {
    port,
    paths,
    connectionsClosed: (n) => new Promise<void>((resolve) => {
      const check = (): void => { if (closed >= n) resolve(); else waiters.push(check) }
      check()
    })
  }
}

const smuggled = 'GET /internal HTTP/1.1\r\nHost: backend\r\n\r\n'

async function setup (t: TestContext, trustUpstream: boolean) {
  const upstream = await vulnerableUpstream(t)
  const { port, app } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${upstream.port}`] } } }, (app) => {
    // A badly checked version makes the backend refuse (the attack sends e.g. Sec-WebSocket-Version: 1337).
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  }, { trustUpstream })
  return { upstream, port, app }
}

test('relays a 426 from the upstream, closes both sides, and a smuggled GET /internal never reaches the upstream', async (t) => {
  const { upstream, port, app } = await setup(t, false)
  const closes = legacyCloses(t)
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat', { 'Sec-WebSocket-Version': '1337' }))
  // The attacker sends the next request as soon as the refusal arrives.
  await client.until('upgrade refused')
  if (!client.socket.destroyed) client.socket.write(smuggled)
  await Promise.all([client.closed, upstream.connectionsClosed(1), closes.waitFor(1)])
  assert.match(client.received, /^HTTP\/1\.1 426 Upgrade Required\r\n/)
  assert.match(client.received, /\r\nConnection: close\r\n/)
  assert.ok(!client.received.includes('internal secret'))
  assert.deepEqual(upstream.paths, ['/chat'])
  assert.equal(app.switchyard.stats()['cluster.c.upstream_cx_destroy'], 1)
})

test('with trustUpstream the blind pipe lets a smuggled GET /internal reach the upstream (the documented risk)', async (t) => {
  const { upstream, port } = await setup(t, true)
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat', { 'Sec-WebSocket-Version': '1337' }))
  await client.until('upgrade refused')
  client.socket.write(smuggled)
  await client.until('internal secret')
  assert.deepEqual(upstream.paths, ['/chat', '/internal'])
})

/**
 * A raw upstream that records every byte it receives (Node's own HTTP server drops bytes pipelined behind
 * an upgrade request it does not take, so it cannot show what a proxy forwards) and refuses with a 426.
 */
async function recordingUpstream (t: TestContext): Promise<{ port: number, bytes: () => string, closed: Promise<void>, sawInternal: Promise<void> }> {
  let bytes = ''
  let onClosed!: () => void
  let onInternal!: () => void
  const closed = new Promise<void>((resolve) => { onClosed = resolve })
  const sawInternal = new Promise<void>((resolve) => { onInternal = resolve })
  const port = await rawUpstream(t, (s) => {
    s.on('error', () => {})
    s.on('data', (chunk: Buffer) => {
      const first = bytes === ''
      bytes += chunk.toString('latin1')
      if (first) s.write('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 15\r\n\r\nupgrade refused')
      if (bytes.includes('GET /internal')) onInternal()
    })
    s.on('end', () => s.end())
    s.on('close', onClosed)
  })
  return { port, bytes: () => bytes, closed, sawInternal }
}

for (const trustUpstream of [false, true]) {
  test(trustUpstream
    ? 'with trustUpstream a GET /internal pipelined behind the upgrade request is forwarded to the upstream'
    : 'never forwards a GET /internal pipelined behind the upgrade request by default', async (t) => {
    const upstream = await recordingUpstream(t)
    const { port } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${upstream.port}`] } } }, (app) => {
      app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
    }, { trustUpstream })
    const client = await rawTextClient(t, port, wsUpgradeHead('/chat', { 'Sec-WebSocket-Version': '1337' }) + smuggled)
    await client.until('upgrade refused')
    if (trustUpstream) {
      await upstream.sawInternal
    } else {
      await Promise.all([client.closed, upstream.closed])
      assert.match(upstream.bytes(), /^GET \/chat HTTP\/1\.1\r\n/)
      assert.ok(!upstream.bytes().includes('/internal'), 'nothing after the upgrade request reached the upstream')
    }
  })
}

test('relays a chunked refusal in full and closes after its last chunk', async (t) => {
  const server = http.createServer((req, res) => {
    res.writeHead(400, { 'content-type': 'text/plain' })
    res.write('first part, ')
    res.end('last part')
  })
  server.keepAliveTimeout = 60_000
  const up = await listen(t, server)
  const { port } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat'))
  await client.closed
  assert.match(client.received, /^HTTP\/1\.1 400 Bad Request\r\n/)
  assert.match(client.received, /\r\nTransfer-Encoding: chunked\r\n/i)
  assert.ok(client.received.endsWith('\r\n0\r\n\r\n'), 'the chunked body ends with its last chunk')
  assert.ok(client.received.includes('first part, ') && client.received.includes('last part'))
})
