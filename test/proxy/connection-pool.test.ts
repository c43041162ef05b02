import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { proxy } from '@switchyard/core'
import { startProxy, stat } from '../helpers/start-proxy.ts'
import { listen } from '../helpers/net.ts'

/**
 * Plain requests ride the cluster's connection pool (Envoy's HTTP/1.1 pool): each connection it opens is
 * counted in `upstream_cx_total`, and `circuitBreakers.maxConnections` caps them per endpoint; requests
 * over the cap wait for a free connection.
 */

test('plain requests share kept-alive upstream connections, each counted once in upstream_cx_total', async (t) => {
  const server = http.createServer((req, res) => res.end('ok'))
  const port = await listen(t, server)
  const front = await startProxy(t, { clusters: { up: { endpoints: [`127.0.0.1:${port}`] } } }, (app) => {
    app.get('/p', { upstream: { cluster: 'up' } }, proxy)
  })
  for (let i = 0; i < 3; i++) assert.equal(await (await fetch(`http://127.0.0.1:${front.port}/p`)).text(), 'ok')
  assert.equal(stat(front.app, 'cluster.up.upstream_cx_total'), 1)
  // The upstream closes its idle connection: the next request opens and counts another.
  server.closeAllConnections()
  while (stat(front.app, 'cluster.up.upstream_cx_total') === 1) {
    const res = await fetch(`http://127.0.0.1:${front.port}/p`)
    await res.text()
  }
  assert.equal(stat(front.app, 'cluster.up.upstream_cx_total'), 2)
})

test('concurrent plain requests open no more upstream connections than maxConnections, and all are answered', async (t) => {
  let connections = 0
  const held: http.ServerResponse[] = []
  let arrived = 0
  let onArrived: (() => void) | undefined
  const server = http.createServer((req, res) => {
    arrived++
    held.push(res)
    onArrived?.()
  })
  server.on('connection', () => { connections++ })
  const port = await listen(t, server)
  const front = await startProxy(t, { clusters: { up: { endpoints: [`127.0.0.1:${port}`], circuitBreakers: { maxConnections: 2 } } } }, (app) => {
    app.get('/p', { upstream: { cluster: 'up', timeout: 0 } }, proxy)
  })
  const answers = Array.from({ length: 10 }, async () => {
    const res = await fetch(`http://127.0.0.1:${front.port}/p`)
    return [res.status, await res.text()] as const
  })
  // Two requests reach the upstream and hold both connections; the other eight wait in the pool.
  await new Promise<void>((resolve) => { onArrived = () => { if (arrived === 2) resolve() }; onArrived() })
  // From now on every request is answered as it arrives.
  onArrived = () => { for (const res of held.splice(0)) res.end('ok') }
  onArrived()
  for (const answer of await Promise.all(answers)) assert.deepEqual(answer, [200, 'ok'])
  assert.equal(connections, 2)
  assert.equal(stat(front.app, 'cluster.up.upstream_cx_total'), 2)
})
