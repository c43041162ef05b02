import type { WebSocket } from 'ws'

export interface ChatMessage {
  id: number
  from: string
  text: string
  /** Which front route the sender came through: `h2` (new style over the H2 hop) or `legacy`. */
  via: string
  /** The app instance that delivered this copy to its reader (each member gets its own instance's name). */
  app: string
}

/**
 * The chat room every app instance shares, as instances of a real chat share a store (Redis pub/sub and
 * the like): a message sent to one instance reaches every member, whichever instance holds its socket.
 */
export class ChatRoom {
  readonly #members = new Map<WebSocket, string>()
  #nextId = 1

  join (socket: WebSocket, instance: string): void {
    this.#members.set(socket, instance)
    socket.on('close', () => this.#members.delete(socket))
  }

  send (raw: string): void {
    const message = { id: this.#nextId++, ...readChat(raw) }
    for (const [member, instance] of this.#members) member.send(JSON.stringify({ ...message, app: instance } satisfies ChatMessage))
  }
}

/** `{"from","text","via"}` from the page; any other text is a message from `anonymous`. */
function readChat (raw: string): Omit<ChatMessage, 'id' | 'app'> {
  try {
    const m = JSON.parse(raw) as Partial<ChatMessage>
    if (typeof m.text === 'string') {
      return { from: String(m.from ?? 'anonymous').slice(0, 40), text: m.text.slice(0, 500), via: String(m.via ?? '?').slice(0, 20) }
    }
  } catch {}
  return { from: 'anonymous', text: raw.slice(0, 500), via: '?' }
}
