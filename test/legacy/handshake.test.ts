import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import WebSocket from 'ws'
import { proxy, type Filter } from '@switchyard/core'
import { rawUpstream, readHead, startLegacyProxy, SWITCHING } from '../helpers/legacy-net.ts'
import { rawTextClient, wsUpgradeHead } from '../helpers/raw-client.ts'
import { allDraftsUpstream, hixie76Handshake, hixieFrame, wsEchoUpstream } from '../helpers/legacy-upstreams.ts'

async function echoOnce (ws: WebSocket, message: string): Promise<string> {
  ws.send(message)
  const [data] = await once(ws, 'message') as [Buffer]
  return String(data)
}

for (const perMessageDeflate of [false, true]) {
  test(`tunnels a ws client to a ws server through a legacy route ${perMessageDeflate ? 'with' : 'without'} permessage-deflate`, async (t) => {
    const upstream = await wsEchoUpstream(t)
    const { port, app } = await startLegacyProxy(t, { clusters: { chat: { endpoints: [`127.0.0.1:${upstream.port}`] } } }, (app) => {
      app.get('/chat', { useWebsocket: true, upstream: { cluster: 'chat' } }, proxy)
    })
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, { perMessageDeflate })
    t.after(() => ws.terminate())
    await once(ws, 'open')
    assert.equal(ws.extensions.includes('permessage-deflate'), perMessageDeflate)
    assert.equal(await echoOnce(ws, 'hello'), 'echo:hello')
    const big = 'x'.repeat(200_000)
    assert.equal(await echoOnce(ws, big), `echo:${big}`)
    const binary = Buffer.from([0, 1, 2, 255])
    ws.send(binary)
    const [back] = await once(ws, 'message') as [Buffer]
    assert.deepEqual(Buffer.from(back), binary)
    assert.equal(app.switchyard.stats().downstream_cx_websocket_active, 1)
    ws.close(1000, 'bye')
    const [code] = await once(ws, 'close') as [number]
    assert.equal(code, 1000)
  })
}

test('carries a hand-made hixie-76 handshake and its frames to an all-drafts upstream', async (t) => {
  const upstream = await allDraftsUpstream(t)
  const { port } = await startLegacyProxy(t, { clusters: { chat: { endpoints: [`127.0.0.1:${upstream.port}`] } } }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'chat' } }, proxy)
  })
  const { head, key3, answer } = hixie76Handshake('/chat', `127.0.0.1:${port}`)
  // The 8 key bytes follow the head in the same write, as browsers sent them.
  const client = await rawTextClient(t, port, Buffer.concat([Buffer.from(head, 'latin1'), key3]))
  const headEnd = (s: string): number => s.indexOf('\r\n\r\n')
  await client.until((s) => headEnd(s) !== -1 && s.length >= headEnd(s) + 4 + 16)
  const received = Buffer.from(client.received, 'latin1')
  const end = received.indexOf('\r\n\r\n') + 4
  assert.match(received.toString('latin1', 0, end), /^HTTP\/1\.1 101 /)
  assert.deepEqual(received.subarray(end, end + 16), answer)
  assert.deepEqual(upstream.versions, ['hixie-76'])

  const before = client.received.length
  client.socket.write(hixieFrame('hello from 2010'))
  await client.until((s) => s.length >= before + hixieFrame('echo:hello from 2010').length)
  assert.deepEqual(Buffer.from(client.received.slice(before), 'latin1'), hixieFrame('echo:hello from 2010'))
})

test('carries the hixie-76 key bytes when they arrive after the head, in a later packet', async (t) => {
  const upstream = await allDraftsUpstream(t)
  const { port } = await startLegacyProxy(t, { clusters: { chat: { endpoints: [`127.0.0.1:${upstream.port}`] } } }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'chat' } }, proxy)
  })
  const { head, key3, answer } = hixie76Handshake('/chat', 'front.example')
  const client = await rawTextClient(t, port, head)
  // The upstream cannot answer without the key: the 101 proves the late bytes were forwarded.
  client.socket.write(key3.subarray(0, 3))
  client.socket.write(key3.subarray(3))
  await client.until((s) => s.includes('\r\n\r\n') && s.length >= s.indexOf('\r\n\r\n') + 20)
  const received = Buffer.from(client.received, 'latin1')
  const end = received.indexOf('\r\n\r\n') + 4
  assert.deepEqual(received.subarray(end, end + 16), answer)
})

test('serves a request without upgrade headers on a useWebsocket route as an ordinary HTTP request', async (t) => {
  const upstream = await wsEchoUpstream(t, 'chat-http')
  const { port, app } = await startLegacyProxy(t, { clusters: { chat: { endpoints: [`127.0.0.1:${upstream.port}`] } } }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'chat' } }, proxy)
  })
  const res = await fetch(`http://127.0.0.1:${port}/chat?plain=1`)
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('x-upstream'), 'chat-http')
  assert.equal(await res.text(), 'plain /chat?plain=1')
  // An Upgrade header without `upgrade` in Connection is not an upgrade either.
  const client = await rawTextClient(t, port, 'GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n')
  await client.closed
  assert.match(client.received, /^HTTP\/1\.1 200 /)
  assert.match(client.received, /plain \/chat$/)
  assert.equal(app.switchyard.stats().downstream_cx_websocket_total ?? 0, 0)
})

test('answers 403 to a WebSocket upgrade on a route with neither useWebsocket nor a websocket upgrade config', async (t) => {
  let reached = 0
  const up = await rawUpstream(t, (s) => { reached++; s.destroy() })
  const { port, app } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.get('/plain', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawTextClient(t, port, wsUpgradeHead('/plain'))
  await client.closed
  assert.match(client.received, /^HTTP\/1\.1 403 /)
  assert.equal(reached, 0)
  assert.equal(app.switchyard.stats().downstream_rq_ws_on_non_ws_route, 1)
})

test('serves an HTTP/1.0 WebSocket upgrade on a legacy route as a plain request, its Upgrade not forwarded (RFC 9110 §7.8)', async (t) => {
  let head = ''
  const up = await rawUpstream(t, (s) => {
    s.setEncoding('latin1')
    s.on('data', (d: string) => {
      head += d
      if (head.includes('\r\n\r\n')) s.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nplain')
    })
  })
  const { port, app } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawTextClient(t, port, wsUpgradeHead('/chat').replace('HTTP/1.1', 'HTTP/1.0'))
  await client.closed
  assert.match(client.received, /^HTTP\/1\.[01] 200 [^]*\r\n\r\nplain$/)
  assert.match(head, /^GET \/chat HTTP\/1\.1\r\n/)
  assert.doesNotMatch(head, /\r\nupgrade:/i)
  assert.equal(app.switchyard.stats().downstream_cx_websocket_total ?? 0, 0)
})

test('runs Fastify hooks before the pipe: a hook answering 401 stops the upgrade before the upstream', async (t) => {
  let reached = 0
  const up = await rawUpstream(t, (s) => {
    reached++
    s.on('data', () => {})
    s.write(SWITCHING)
  })
  const { port } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization !== 'Bearer ok') return reply.code(401).send({ error: 'unauthorized' })
    })
    app.get('/chat', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  })
  const denied = await rawTextClient(t, port, wsUpgradeHead('/chat'))
  await denied.closed
  assert.match(denied.received, /^HTTP\/1\.1 401 /)
  assert.equal(reached, 0)

  const allowed = await rawTextClient(t, port, wsUpgradeHead('/chat', { Authorization: 'Bearer ok' }))
  await allowed.until('\r\n\r\n')
  assert.match(allowed.received, /^HTTP\/1\.1 101 /)
  assert.equal(reached, 1)
})

test('runs no HTTP filter on a legacy route, while the same filter sees a new-style upgrade', async (t) => {
  const seen: string[] = []
  const counting: Filter = {
    name: 'counting',
    onRequestHeaders (ctx) { seen.push(`headers ${ctx.route.url}`) },
    onRequestData (ctx) { seen.push(`data ${ctx.route.url}`) },
    onResponseHeaders (ctx, status) { seen.push(`response ${status} ${ctx.route.url}`) }
  }
  const up = await rawUpstream(t, async (s) => {
    await readHead(s)
    s.write(SWITCHING)
    s.pipe(s)
  })
  const { port } = await startLegacyProxy(t, {
    clusters: { c: { endpoints: [`127.0.0.1:${up}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    filters: [counting]
  }, (app) => {
    app.get('/legacy', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
    app.get('/modern', { upstream: { cluster: 'c' } }, proxy)
  })
  const legacy = await rawTextClient(t, port, wsUpgradeHead('/legacy'))
  await legacy.until('\r\n\r\n')
  legacy.socket.write('ping')
  await legacy.until('ping')
  assert.deepEqual(seen, [])

  const modern = await rawTextClient(t, port, wsUpgradeHead('/modern'))
  await modern.until('\r\n\r\n')
  modern.socket.write('ping')
  await modern.until('ping')
  assert.deepEqual(seen, ['headers /modern', 'response 101 /modern', 'data /modern'])
})

test('re-serialises the request head with prefix and host rewrite, Content-Length as sent, then the early bytes', async (t) => {
  const heads: string[] = []
  const rests: string[] = []
  const up = await rawUpstream(t, async (s) => {
    const { head, rest } = await readHead(s)
    heads.push(head)
    let body = rest.toString('latin1')
    if (body.length < 5) {
      for await (const chunk of s) {
        body += (chunk as Buffer).toString('latin1')
        if (body.length >= 5) break
      }
    }
    rests.push(body)
    s.end(SWITCHING)
  })
  const { port } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.get('/ws/*', { useWebsocket: true, upstream: { cluster: 'c', prefixRewrite: '/socket/', hostRewrite: 'chat.internal' } }, proxy)
    app.get('/auto/*', { useWebsocket: true, upstream: { cluster: 'c', autoHostRewrite: true } }, proxy)
  })
  const c1 = await rawTextClient(t, port, wsUpgradeHead('/ws/room/1?x=y', { 'Content-Length': '5', 'X-Custom-Case': 'Kept' }) + 'hello')
  await c1.until('\r\n\r\n')
  const head = heads[0]!
  assert.match(head, /^GET \/socket\/room\/1\?x=y HTTP\/1\.1\r\n/)
  assert.match(head, /\r\nHost: chat\.internal\r\n/)
  assert.match(head, /\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n/)
  assert.match(head, /\r\nContent-Length: 5\r\n/)
  assert.match(head, /\r\nX-Custom-Case: Kept\r\n/)
  // Envoy's router records the rewritten path's original.
  assert.match(head, /\r\nx-forwarded-for: 127\.0\.0\.1\r\nx-forwarded-proto: http\r\nx-envoy-original-path: \/ws\/room\/1\?x=y\r\n\r\n$/)
  assert.equal(rests[0], 'hello')

  const c2 = await rawTextClient(t, port, wsUpgradeHead('/auto/x', { 'Content-Length': '5' }) + 'howdy')
  await c2.until('\r\n\r\n')
  assert.match(heads[1]!, /^GET \/auto\/x HTTP\/1\.1\r\n/)
  assert.match(heads[1]!, new RegExp(`\\r\\nHost: 127\\.0\\.0\\.1:${up}\\r\\n`))
  assert.equal(rests[1], 'howdy')
})

test('forwards a chunked request body before the answer and holds what follows it, as Envoy\'s old style did (BidirectionalChunkedData)', async (t) => {
  let head = ''
  let body = ''
  let after = ''
  const up = await rawUpstream(t, (s) => {
    let buf = ''
    let answered = false
    s.on('end', () => s.end())
    s.on('data', (chunk: Buffer) => {
      if (answered) { after += chunk.toString('latin1'); return }
      buf += chunk.toString('latin1')
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      head = buf.slice(0, end + 4)
      body = buf.slice(end + 4)
      // The upstream answers only once it has the whole chunked body, as an HTTP server reading it would.
      if (!body.endsWith('0\r\n\r\n')) return
      answered = true
      s.write(SWITCHING)
    })
  })
  const { port } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.get('/ws', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawTextClient(t, port, wsUpgradeHead('/ws', { 'Transfer-Encoding': 'chunked' }) + '3\r\n123\r\n0\r\n\r\nSomeWebSocketPayload')
  await client.until('\r\n\r\n')
  assert.match(client.received, /^HTTP\/1\.1 101 /)
  assert.match(head, /\r\nTransfer-Encoding: chunked\r\n/)
  assert.doesNotMatch(head, /content-length/i)
  assert.equal(body, '3\r\n123\r\n0\r\n\r\n')
  client.socket.end()
  await client.closed
  assert.equal(after, 'SomeWebSocketPayload')
})

test('frames a body-less WebSocket request with content-length: 0, as Envoy\'s HTTP/1 codec did', async (t) => {
  let head = ''
  const up = await rawUpstream(t, (s) => {
    s.once('data', (chunk: Buffer) => { head = chunk.toString('latin1'); s.write(SWITCHING) })
  })
  const { port } = await startLegacyProxy(t, { clusters: { c: { endpoints: [`127.0.0.1:${up}`] } } }, (app) => {
    app.get('/ws', { useWebsocket: true, upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawTextClient(t, port, wsUpgradeHead('/ws', { 'x-envoy-original-path': '/forged' }))
  await client.until('\r\n\r\n')
  assert.match(head, /\r\ncontent-length: 0\r\n\r\n$/)
  assert.doesNotMatch(head, /forged/, 'a client-sent x-envoy-original-path reached the upstream')
})
