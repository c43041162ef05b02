import type { IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import type { WebSocket } from 'ws'
import { acceptShout, SHOUT } from './shout-service.ts'

export interface ChatMessage {
  id: number
  from: string
  text: string
  /** Which front route the sender came through: `h2` (new style over the H2 hop) or `legacy`. */
  via: string
}

/**
 * The app behind the sidecar, plain HTTP/1.1 and unaware of the mesh: Fastify with @fastify/websocket
 * (`/chat` broadcasts to everyone connected, `/echo` echoes), `GET /hello`, and the `shout`
 * upgrade (a non-WebSocket protocol: every byte comes back upper-cased).
 */
export async function startApp (host: string, port: number): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  await app.register(websocket)
  const room = new Set<WebSocket>()
  let nextId = 1

  app.get('/chat', { websocket: true }, (socket) => {
    room.add(socket)
    socket.on('close', () => room.delete(socket))
    socket.on('message', (data, isBinary) => {
      if (isBinary) return
      const message: ChatMessage = { id: nextId++, ...readChat(String(data)) }
      const out = JSON.stringify(message)
      for (const member of room) member.send(out)
    })
  })
  app.get('/echo', { websocket: true }, (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
  })
  app.get('/hello', async (request) => ({ hello: 'from the app', via: request.headers['x-forwarded-proto'] ?? null }))

  try {
    await app.listen({ host, port })
  } catch (err) {
    await app.close()
    throw err
  }
  takeShoutUpgrades(app)
  return { app, port: (app.server.address() as AddressInfo).port }
}

/** `{"from","text","via"}` from the page; any other text is a message from `anonymous`. */
function readChat (raw: string): Omit<ChatMessage, 'id'> {
  try {
    const m = JSON.parse(raw) as Partial<ChatMessage>
    if (typeof m.text === 'string') {
      return { from: String(m.from ?? 'anonymous').slice(0, 40), text: m.text.slice(0, 500), via: String(m.via ?? '?').slice(0, 20) }
    }
  } catch {}
  return { from: 'anonymous', text: raw.slice(0, 500), via: '?' }
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
