/** Clients and waits for the mesh tests: everything on 127.0.0.1, torn down with `t.after`. */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import type { TestContext } from 'node:test'
import WebSocket from 'ws'
import { resolveConfig, type MeshConfig } from '../../mesh/config.ts'
import { startMesh, type Mesh } from '../../mesh/mesh.ts'
import type { Counters } from '../../mesh/counters.ts'

export const TOKEN = 'test-token-123'
export const bearer = { authorization: `Bearer ${TOKEN}` }

/** The default topology on free ports, a short drain; `overrides` laid over it. */
export function testConfig (overrides: Record<string, unknown> = {}): MeshConfig {
  return resolveConfig({
    token: TOKEN,
    front: { port: 0, shutdownGracePeriod: 0 },
    sidecar: { port: 0 },
    app: { port: 0 },
    ...overrides
  })
}

/** Starts a mesh in this process; `t.after` closes it. Access-log lines are kept in `log`. */
export async function meshFor (t: TestContext, config = testConfig()): Promise<{ mesh: Mesh, log: string[] }> {
  const log: string[] = []
  const mesh = await startMesh(config, { log: (line) => log.push(line) })
  t.after(() => mesh.close())
  return { mesh, log }
}

/** Opens a WebSocket and waits for the handshake; `t.after` terminates it. */
export async function openWs (t: TestContext, url: string, headers: Record<string, string> = bearer): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers })
  t.after(() => ws.terminate())
  await once(ws, 'open')
  return ws
}

/** The status a refused WebSocket handshake got. */
export async function refusedStatus (url: string, headers: Record<string, string> = {}): Promise<number> {
  const ws = new WebSocket(url, { headers })
  ws.on('error', () => {})
  const [, res] = await once(ws, 'unexpected-response') as [unknown, { statusCode: number }]
  ws.terminate()
  return res.statusCode
}

/** The next message on `ws`, as text. */
export async function nextText (ws: WebSocket): Promise<string> {
  const [data] = await once(ws, 'message')
  return String(data)
}

/** Resolves with the mesh's counters once `ok` holds for them (checked at every change). */
export async function countersWhen (mesh: Mesh, ok: (c: Counters) => boolean): Promise<Counters> {
  for (;;) {
    const counters = mesh.totals.snapshot().counters
    if (ok(counters)) return counters
    await once(mesh.totals, 'change')
  }
}

/** An open `/mesh/events` stream (the response head is in); `until` reads snapshots until `ok` holds. */
export async function openEvents (t: TestContext, url: string): Promise<{ until (ok: (c: Counters) => boolean): Promise<Counters> }> {
  const controller = new AbortController()
  t.after(() => controller.abort())
  const res = await fetch(`${url}/mesh/events`, { signal: controller.signal })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-type'), 'text/event-stream')
  const chunks = res.body![Symbol.asyncIterator]()
  let buffered = ''
  return {
    async until (ok) {
      for (;;) {
        let end: number
        while ((end = buffered.indexOf('\n\n')) !== -1) {
          const event = buffered.slice(0, end)
          buffered = buffered.slice(end + 2)
          const counters = (JSON.parse(event.replace(/^data: /, '')) as { counters: Counters }).counters
          if (ok(counters)) return counters
        }
        const next = await chunks.next()
        if (next.done === true) throw new Error('the event stream ended first')
        buffered += Buffer.from(next.value).toString('utf8')
      }
    }
  }
}

/** A raw TCP client to the front; `t.after` destroys it. */
export async function rawClient (t: TestContext, port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  socket.on('error', () => {})
  t.after(() => socket.destroy())
  await once(socket, 'connect')
  return socket
}

/** Everything read until the peer ends. */
export async function readAll (socket: net.Socket): Promise<string> {
  let got = ''
  socket.on('data', (d: Buffer) => { got += d.toString('latin1') })
  await once(socket, 'end')
  return got
}
