// Run by pack.test.ts inside a fresh app that installed the four tarballs: a WebSocket echo through a new-style
// route (with a filter from @switchyard/filters), through a legacy useWebsocket route, and across an HTTP/2
// hop (front → h2c extended CONNECT → sidecar → app). Prints one JSON line with what came back.
import { once } from 'node:events'
import Fastify from 'fastify'
import WebSocket, { WebSocketServer } from 'ws'
import switchyard, { proxy, errors } from '@switchyard/core'
import websocketTcp from '@switchyard/websocket-tcp'
import h2Connect from '@switchyard/h2-connect'
import { createHeaderMutationFilter } from '@switchyard/filters'

const upstream = new WebSocketServer({ port: 0, host: '127.0.0.1' })
await once(upstream, 'listening')
upstream.on('connection', (ws, req) => ws.on('message', (data) => ws.send(`${req.headers['x-front'] ?? '-'}:${data}`)))
const appEndpoint = `127.0.0.1:${upstream.address().port}`

const sidecar = Fastify({ http2: true, forceCloseConnections: true })
await sidecar.register(switchyard, { clusters: { app: { endpoints: [appEndpoint] } }, upgradeConfigs: [{ upgradeType: 'websocket' }] })
await sidecar.register(h2Connect)
sidecar.get('/h2', { upstream: { cluster: 'app' } }, proxy)
await sidecar.listen({ port: 0, host: '127.0.0.1' })

const front = Fastify({ forceCloseConnections: true })
await front.register(switchyard, {
  clusters: {
    app: { endpoints: [appEndpoint] },
    sidecar: { endpoints: [`http://127.0.0.1:${sidecar.server.address().port}`], protocol: 'http2' }
  },
  upgradeConfigs: [{ upgradeType: 'websocket' }],
  filters: [createHeaderMutationFilter({ request: { set: { 'x-front': 'switchyard' } } })]
})
await front.register(websocketTcp)
await front.register(h2Connect)
front.get('/new', { upstream: { cluster: 'app' } }, proxy)
front.get('/legacy', { useWebsocket: true, upstream: { cluster: 'app' } }, proxy)
front.get('/h2', { upstream: { cluster: 'sidecar' } }, proxy)
await front.listen({ port: 0, host: '127.0.0.1' })

async function echo (path) {
  const ws = new WebSocket(`ws://127.0.0.1:${front.server.address().port}${path}`)
  await once(ws, 'open')
  ws.send('hi')
  const [data] = await once(ws, 'message')
  ws.close(1000)
  await once(ws, 'close')
  return String(data)
}

const result = {
  newStyle: await echo('/new'),
  legacy: await echo('/legacy'),
  h2: await echo('/h2'),
  errorCode: new errors.SwyFilterError('f', 'x').code
}
await front.close()
await sidecar.close()
upstream.close()
process.stdout.write(JSON.stringify(result) + '\n')
