import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { bearer, countersWhen, openEvents, meshFor, nextText, openWs, rawClient, readAll, refusedStatus, TOKEN } from './helpers/mesh-clients.ts'

test('a new-style WebSocket reaches the app over the H2 hop and its bytes are counted on both hops', async (t) => {
  const { mesh, log } = await meshFor(t)
  const ws = await openWs(t, mesh.url.replace(/^http/, 'ws') + '/chat')
  ws.send(JSON.stringify({ from: 'ada', text: 'over h2', via: 'h2' }))
  const message = JSON.parse(await nextText(ws)) as { from: string, text: string, via: string }
  assert.deepEqual({ from: message.from, text: message.text, via: message.via }, { from: 'ada', text: 'over h2', via: 'h2' })

  // The sidecar's own meter saw the tunnel: it crossed the HTTP/2 hop.
  // The same payload crossed both hops (each node reports on its own schedule: wait for both).
  const c = await countersWhen(mesh, (c) => (c['bytes.h2.down'] ?? 0) > 0 && c['bytes.h1.down'] === c['bytes.h2.down'] &&
    (c['bytes.h2.up'] ?? 0) > 0 && c['bytes.h1.up'] === c['bytes.h2.up'] && c['active.sidecar'] === 1)
  assert.equal(c['upgrades.websocket'], 1)
  assert.equal(c['active.h2'], 1)
  ws.close()
  await countersWhen(mesh, (c) => c['active.h2'] === 0 && c['active.sidecar'] === 0)
  assert.match(log.join('\n'), /access GET \/chat websocket 101 up=\d+ down=\d+/)
})

test('legacy and new-style clients share the app\'s chat room', async (t) => {
  const { mesh } = await meshFor(t)
  const base = mesh.url.replace(/^http/, 'ws')
  const h2 = await openWs(t, base + '/chat')
  const legacy = await openWs(t, base + '/legacy/chat')
  const seenByH2 = nextText(h2)
  const seenByLegacy = nextText(legacy)
  legacy.send(JSON.stringify({ from: 'bob', text: 'the old way', via: 'legacy' }))
  for (const text of [await seenByH2, await seenByLegacy]) assert.equal((JSON.parse(text) as { text: string }).text, 'the old way')
  const c = await countersWhen(mesh, (c) => c['active.legacy'] === 1 && c['upgrades.legacy'] === 1)
  assert.equal(c['upgrades.websocket'], 1)
  legacy.close()
  // Legacy tunnels run no filter: their bytes are counted when they close.
  await countersWhen(mesh, (c) => (c['bytes.legacy.up'] ?? 0) > 0 && (c['bytes.legacy.down'] ?? 0) > 0 && c['active.legacy'] === 0)
})

test('the echo route sends text and binary back unchanged', async (t) => {
  const { mesh } = await meshFor(t)
  const ws = await openWs(t, mesh.url.replace(/^http/, 'ws') + '/echo')
  ws.send(Buffer.from([0, 1, 2, 255]))
  const [data, isBinary] = await once(ws, 'message')
  assert.deepEqual(Buffer.from(data as Buffer), Buffer.from([0, 1, 2, 255]))
  assert.equal(isBinary, true)
})

test('a non-WebSocket upgrade crosses the H2 hop to the app\'s shout service and half-closes cleanly', async (t) => {
  const { mesh } = await meshFor(t)
  const socket = await rawClient(t, mesh.ports.front)
  // The bytes behind the head are held until the 101, then sent on. A FIN before the 101 would close
  // the stream (Envoy's HTTP/1 codec does the same): half-close once the 101 is in.
  socket.write(`GET /shout HTTP/1.1\r\nhost: mesh\r\nauthorization: Bearer ${TOKEN}\r\nconnection: upgrade\r\nupgrade: shout\r\n\r\nhello there`)
  socket.once('data', () => socket.end())
  const got = await readAll(socket)
  assert.match(got, /^HTTP\/1\.1 101 /)
  assert.match(got, /\r\nupgrade: shout\r\n/i)
  assert.ok(got.endsWith('\r\n\r\nHELLO THEREBYE\n'), JSON.stringify(got))
  const c = await countersWhen(mesh, (c) => c['upgrades.shout'] === 1 && c['active.h2'] === 0)
  assert.equal(c['upgrades.websocket'] ?? 0, 0)
})

test('upgrades without the token are refused on every route, and counted by status', async (t) => {
  const { mesh } = await meshFor(t)
  const base = mesh.url.replace(/^http/, 'ws')
  assert.equal(await refusedStatus(base + '/chat'), 401)
  assert.equal(await refusedStatus(base + '/chat', { authorization: 'Bearer wrong' }), 403)
  assert.equal(await refusedStatus(base + '/legacy/chat'), 401)
  assert.equal(await refusedStatus(base + '/legacy/chat', { cookie: 'mesh_token=wrong' }), 403)
  // /shout enables only the shout upgrade: a WebSocket there is Envoy's 403, even with the token.
  assert.equal(await refusedStatus(base + '/shout', bearer), 403)
  await countersWhen(mesh, (c) => c['refused.401'] === 2 && c['refused.403'] === 3)
})

test('the page\'s cookie is accepted in place of the Authorization header', async (t) => {
  const { mesh } = await meshFor(t)
  const page = await fetch(mesh.url + '/')
  assert.equal(page.status, 200)
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
  const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0]!
  assert.equal(cookie, `mesh_token=${TOKEN}`)
  const base = mesh.url.replace(/^http/, 'ws')
  const h2 = await openWs(t, base + '/echo', { cookie })
  h2.send('with a cookie')
  assert.equal(await nextText(h2), 'with a cookie')
  await openWs(t, base + '/legacy/echo', { cookie })
})

test('plain requests go through the same chain and hop: 401 without the token, the app\'s answer with it', async (t) => {
  const { mesh } = await meshFor(t)
  assert.equal((await fetch(mesh.url + '/hello')).status, 401)
  const res = await fetch(mesh.url + '/hello', { headers: bearer })
  assert.equal(res.status, 200)
  const body = await res.json() as { hello: string, app: string, via: string }
  assert.deepEqual({ hello: body.hello, via: body.via }, { hello: 'from the app', via: 'http' })
  assert.match(body.app, /^app-[12]$/, 'one of the two instances answered')
})

test('/mesh/stats and /mesh/events serve the same totals', async (t) => {
  const { mesh } = await meshFor(t)
  const stats = await (await fetch(mesh.url + '/mesh/stats')).json() as { counters: Record<string, number> }
  assert.equal(stats.counters.fronts, 1)
  assert.deepEqual(stats, mesh.totals.snapshot())
  const pushed = await (await openEvents(t, mesh.url)).until(() => true)
  assert.deepEqual(pushed, stats.counters)
})

test('a CONNECT crosses the H2 hop as an HTTP/2 CONNECT to the app side\'s TCP echo, counted as one more upgrade type', async (t) => {
  const { mesh, log } = await meshFor(t)
  const socket = await rawClient(t, mesh.ports.front)
  socket.write(`CONNECT echo.mesh:7 HTTP/1.1\r\nhost: echo.mesh:7\r\nauthorization: Bearer ${TOKEN}\r\n\r\nthrough the mesh`)
  socket.once('data', () => socket.end())
  const got = await readAll(socket)
  assert.match(got, /^HTTP\/1\.1 200 Connection Established\r\n/)
  assert.ok(got.endsWith('\r\n\r\nthrough the mesh'), JSON.stringify(got))
  const c = await countersWhen(mesh, (c) => c['upgrades.connect'] === 1 && c['active.h2'] === 0 && c['active.sidecar'] === 0 &&
    c['bytes.h1.up'] === 16 && c['bytes.h2.up'] === 16)
  assert.equal(c['bytes.h1.down'], 16)
  assert.match(log.join('\n'), /access CONNECT \/echo\.mesh:7 connect 200 up=16 down=16/)
})

test('a CONNECT without the token is refused like any upgrade', async (t) => {
  const { mesh } = await meshFor(t)
  const socket = await rawClient(t, mesh.ports.front)
  socket.write('CONNECT echo.mesh:7 HTTP/1.1\r\nhost: echo.mesh:7\r\n\r\nnever tunnelled')
  assert.match(await readAll(socket), /^HTTP\/1\.1 401 /)
  await countersWhen(mesh, (c) => c['refused.401'] === 1)
})
