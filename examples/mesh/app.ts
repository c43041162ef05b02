import type { IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { acceptShout, SHOUT } from './shout-service.ts'
import type { ChatRoom } from './chat-room.ts'

/**
 * One instance of the app, plain HTTP/1.1 and unaware of the mesh: Fastify with @fastify/websocket
 * (`/chat` joins the room every instance shares, `/echo` echoes), `GET /hello`, `GET /healthz` (what
 * the clusters in front of it check), and the `shout` upgrade (a non-WebSocket protocol: every byte
 * comes back upper-cased).
 */
export async function startApp (host: string, port: number, name: string, room: ChatRoom): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  await app.register(websocket)

  app.get('/chat', { websocket: true }, (socket) => {
    room.join(socket, name)
    socket.on('message', (data, isBinary) => {
      if (!isBinary) room.send(String(data))
    })
  })
  app.get('/echo', { websocket: true }, (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
  })
  app.get('/hello', async (request) => ({ hello: 'from the app', app: name, via: request.headers['x-forwarded-proto'] ?? null }))
  app.get('/healthz', async () => ({ ok: true, app: name }))

  try {
    await app.listen({ host, port })
  } catch (err) {
    await app.close()
    throw err
  }
  takeShoutUpgrades(app)
  return { app, port: (app.server.address() as AddressInfo).port }
}

/**
 * @fastify/websocket hands every upgrade to `ws`, which refuses any type but `websocket`. The `shout`
 * upgrade is answered first; every other upgrade still goes to @fastify/websocket's listener.
 */
function takeShoutUpgrades (app: FastifyInstance): void {
  const server = app.server
  const others = server.listeners('upgrade') as Array<(req: IncomingMessage, socket: Duplex, head: Buffer) => void>
  server.removeAllListeners('upgrade')
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (req.headers.upgrade?.toLowerCase() === SHOUT) return acceptShout(socket, head)
    for (const listener of others) listener.call(server, req, socket, head)
  })
}
