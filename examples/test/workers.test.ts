import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import WebSocket from 'ws'
import { runMesh } from './helpers/mesh-process.ts'
import { bearer, nextText, openEvents, TOKEN } from './helpers/mesh-clients.ts'

test('--workers 2 runs the front on two processes sharing one port, and the live view sums them', async (t) => {
  const mesh = runMesh(t, { token: TOKEN, front: { port: 0 }, sidecar: { port: 0 }, app: { port: 0 } }, ['--workers', '2'])
  const [, url] = await mesh.line(/open the page \(chat \+ live view of the mesh\): (http:\/\/127\.0\.0\.1:\d+)\/$/)
  assert.ok(mesh.lines.some((l) => l.includes('front processes: 2')))
  const events = await openEvents(t, url!)
  await events.until((c) => c.fronts === 2)

  // Connections are handed out round robin: with several, both workers serve some.
  const sockets: WebSocket[] = []
  for (let i = 0; i < 6; i++) {
    const ws = new WebSocket(url!.replace(/^http/, 'ws') + '/echo', { headers: bearer })
    t.after(() => ws.terminate())
    await once(ws, 'open')
    ws.send(`n${i}`)
    assert.equal(await nextText(ws), `n${i}`)
    sockets.push(ws)
  }
  const totals = await events.until((c) => c['upgrades.websocket'] === 6 && c['active.h2'] === 6 && c['active.sidecar'] === 6)
  assert.equal(totals.fronts, 2)
  for (const ws of sockets) ws.close()
  await events.until((c) => c['active.h2'] === 0)
  const lines = mesh.lines.filter((l) => /\[front#\d+\] access GET \/echo websocket 101/.test(l))
  assert.equal(lines.length, 6)
  assert.equal(new Set(lines.map((l) => /\[(front#\d+)\]/.exec(l)![1])).size, 2, 'both workers served connections')

  mesh.child.kill('SIGINT')
  const [code] = await once(mesh.child, 'exit')
  assert.equal(code, 0)
  assert.equal(mesh.lines.at(-1), 'mesh closed')
})
