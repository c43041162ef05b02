import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ServerResponse } from 'node:http'
import { once } from 'node:events'
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8'
import { runInNewContext } from 'node:vm'
import WebSocket from 'ws'
import Fastify from 'fastify'
import switchyard, { proxy } from '@switchyard/core'
import websocketTcp from '@switchyard/websocket-tcp'
import { wsEchoUpstream } from '../helpers/echo-upstream.ts'

/**
 * An idle tunnel keeps its two sockets and little else (the legacy mode's memory target): once the payload
 * flows, the HTTP exchange that set it up (the downstream's ServerResponse, the upstream ClientRequest)
 * must be collectable. Checked with weak references and a forced full GC.
 */
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Live objects of a constructor after a full GC, from a heap snapshot. */
function liveInstances (constructorName: string): number {
  gc()
  const file = writeHeapSnapshot(join(tmpdir(), `footprint-${process.pid}.heapsnapshot`))
  const text = readFileSync(file, 'utf8')
  rmSync(file)
  const snapshot = JSON.parse(text) as {
    snapshot: { meta: { node_fields: string[], node_types: [string[]] } }, nodes: number[], strings: string[]
  }
  const fields = snapshot.snapshot.meta.node_fields.length
  const objectType = snapshot.snapshot.meta.node_types[0].indexOf('object')
  let n = 0
  for (let i = 0; i < snapshot.nodes.length; i += fields) {
    if (snapshot.nodes[i] === objectType && snapshot.strings[snapshot.nodes[i + 1]!] === constructorName) n++
  }
  return n
}

async function collected (ref: WeakRef<object>): Promise<boolean> {
  // Two rounds: a finalised object may need a second cycle once its weak callbacks ran.
  for (let i = 0; i < 2; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve))
    gc()
  }
  return ref.deref() === undefined
}

for (const legacy of [false, true]) {
  test(`an open ${legacy ? 'legacy' : 'new-style'} tunnel does not keep the response object of its upgrade request`, async (t) => {
    const upstream = await wsEchoUpstream(t)
    const app = Fastify()
    await app.register(switchyard, {
      clusters: { up: { endpoints: [`127.0.0.1:${upstream.port}`] } },
      upgradeConfigs: legacy ? [] : [{ upgradeType: 'websocket' }]
    })
    if (legacy) await app.register(websocketTcp)
    let response: WeakRef<ServerResponse> | undefined
    app.addHook('onRequest', async (_request, reply) => { response = new WeakRef(reply.raw) })
    app.get('/ws', { upstream: { cluster: 'up' }, useWebsocket: legacy }, proxy)
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.after(() => app.close())

    const client = new WebSocket(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`)
    t.after(() => client.terminate())
    await once(client, 'open')
    client.send('still here')
    const [reply] = await once(client, 'message') as [Buffer]
    assert.equal(String(reply), 'still here')

    assert.ok(response !== undefined)
    assert.equal(await collected(response), true, 'the ServerResponse is still reachable from the tunnel')
    if (!legacy) {
      // Core's upstream handshake is an http.request that is never ended (Node publishes no diagnostics
      // for it): count the ClientRequests left in the heap instead (the WebSocket client's is gone too).
      assert.equal(liveInstances('ClientRequest'), 0, 'a ClientRequest is still reachable from the tunnel')
    }
    // The tunnel itself still works after the collection.
    client.send('after gc')
    const [again] = await once(client, 'message') as [Buffer]
    assert.equal(String(again), 'after gc')
  })
}
