import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type WebSocket from 'ws'
import type { Counters } from '../mesh/counters.ts'
import type { Mesh } from '../mesh/mesh.ts'
import { runMesh } from './helpers/mesh-process.ts'
import { bearer, countersWhen, meshFor, nextText, openEvents, openWs, testConfig, TOKEN } from './helpers/mesh-clients.ts'

const views = ['sidecar → app', 'front → app (legacy)'] as const

/** How `view` sees instance `name` in the summed counters: the health most severe among the nodes, and its open streams. */
function endpoint (c: Counters, view: string, name: string): { health: string[], tunnels: number } {
  const prefix = `endpoint|${view}|${name}|`
  const health: string[] = []
  let tunnels = 0
  for (const [key, value] of Object.entries(c)) {
    if (!key.startsWith(prefix)) continue
    const what = key.slice(key.lastIndexOf('|') + 1)
    if (what === 'tunnels') tunnels = value
    else if (value > 0) health.push(what)
  }
  return { health, tunnels }
}

const everywhere = (c: Counters, name: string, health: string): boolean => views.every((v) => endpoint(c, v, name).health.join() === health)

/** A chat on `path`: open, then a message of its own, whose copy says which instance holds the chat. */
async function chat (t: TestContext, url: string, path: string): Promise<{ ws: WebSocket, app: string }> {
  const ws = await openWs(t, url.replace(/^http/, 'ws') + path)
  const text = `hello ${Math.random()}`
  ws.send(JSON.stringify({ from: 'test', text, via: path }))
  for (;;) {
    const m = JSON.parse(await nextText(ws)) as { text: string, app: string }
    if (m.text === text) return { ws, app: m.app }
  }
}

async function act (mesh: Mesh, action: string, name: string, headers: Record<string, string> = bearer): Promise<Response> {
  return await fetch(`${mesh.url}/mesh/apps/${name}/${action}`, { method: 'POST', headers })
}

test('the app runs two health-checked instances: one killed turns unhealthy, new chats go to the other, and it comes back when restarted', { timeout: 60_000 }, async (t) => {
  const { mesh } = await meshFor(t, testConfig({ app: { port: 0, healthCheckInterval: 100 } }))
  assert.deepEqual(mesh.apps.list().map((a) => [a.name, a.running]), [['app-1', true], ['app-2', true]])
  await countersWhen(mesh, (c) => everywhere(c, 'app-1', 'healthy') && everywhere(c, 'app-2', 'healthy'))

  // Least request over open tunnels: chats spread over both instances, and the page's counters say where.
  const first: Array<{ ws: WebSocket, app: string }> = []
  for (let i = 0; i < 12 && (i < 4 || !first.some((c) => c.app === 'app-2')); i++) first.push(await chat(t, mesh.url, i % 2 === 0 ? '/chat' : '/legacy/chat'))
  const held = first.filter((c) => c.app === 'app-2')
  assert.ok(held.length > 0)
  const counted = await countersWhen(mesh, (c) => views.reduce((n, v) => n + endpoint(c, v, 'app-1').tunnels + endpoint(c, v, 'app-2').tunnels, 0) === first.length)
  assert.equal(views.reduce((n, v) => n + endpoint(counted, v, 'app-2').tunnels, 0), held.length)

  assert.equal((await act(mesh, 'kill', 'app-2', {})).status, 401, 'the controls need the token')
  assert.equal((await act(mesh, 'kill', 'app-9')).status, 404)
  const killed = await act(mesh, 'kill', 'app-2')
  assert.deepEqual([killed.status, await killed.json()], [200, { killed: 'app-2' }])
  // Its chats were cut (no close frame: the instance crashed), the others go on.
  await Promise.all(held.map((c) => once(c.ws, 'close')))
  await countersWhen(mesh, (c) => everywhere(c, 'app-2', 'unhealthy') && everywhere(c, 'app-1', 'healthy'))

  for (let i = 0; i < 4; i++) {
    const next = await chat(t, mesh.url, i % 2 === 0 ? '/chat' : '/legacy/chat')
    assert.equal(next.app, 'app-1', 'a new chat goes to the live instance')
  }

  const restarted = await act(mesh, 'restart', 'app-2')
  assert.deepEqual([restarted.status, await restarted.json()], [200, { restarted: 'app-2' }])
  await countersWhen(mesh, (c) => everywhere(c, 'app-2', 'healthy'))
  // With fewer open tunnels it is least loaded: new chats find it again.
  let back = false
  for (let i = 0; i < 12 && !back; i++) back = (await chat(t, mesh.url, '/chat')).app === 'app-2'
  assert.ok(back, 'no new chat reached the restarted instance')
})

test('with --workers 2 the page\'s controls act through the primary and both fronts see the instance go and come back', { timeout: 60_000 }, async (t) => {
  const mesh = runMesh(t, { token: TOKEN, front: { port: 0 }, sidecar: { port: 0 }, app: { port: 0, healthCheckInterval: 100 } }, ['--workers', '2'])
  const [, url] = await mesh.line(/open the page \(chat \+ live view of the mesh\): (http:\/\/127\.0\.0\.1:\d+)\/$/)
  const [, kill] = await mesh.line(/crash an app instance: +curl -s -X POST -H 'authorization: Bearer [^']+' (\S+)$/)
  const [, restart] = await mesh.line(/and bring it back: +curl -s -X POST -H 'authorization: Bearer [^']+' (\S+)$/)
  const events = await openEvents(t, url!)
  const healthCount = (c: Counters, name: string, health: string): number => views.reduce((n, v) =>
    n + Object.entries(c).filter(([k, value]) => k.startsWith(`endpoint|${v}|${name}|`) && k.endsWith(`|${health}`) && value > 0).reduce((m, [, value]) => m + value, 0), 0)
  // Two fronts and the sidecar each see both instances healthy: 2 (front → app) + 1 (sidecar → app).
  await events.until((c) => c.fronts === 2 && healthCount(c, 'app-2', 'healthy') === 3)

  assert.equal((await fetch(kill!, { method: 'POST', headers: bearer })).status, 200)
  await events.until((c) => healthCount(c, 'app-2', 'unhealthy') === 3)
  assert.equal((await fetch(restart!, { method: 'POST', headers: bearer })).status, 200)
  await events.until((c) => healthCount(c, 'app-2', 'healthy') === 3)

  mesh.child.kill('SIGINT')
  const [code] = await once(mesh.child, 'exit')
  assert.equal(code, 0)
})
