import type { Server } from 'node:http'
import type { Duplex } from 'node:stream'

/** How long `app.close()` lets the server's remaining connections finish after the grace period (ms). */
export const REAP_DELAY = 1000

interface Closable { destroy (): void, once (event: 'close', fn: () => void): unknown }

/**
 * What `app.close()` must end whatever the clients do: sockets taken off the HTTP server by an upgrade or
 * a CONNECT (nobody else tracks them), HTTP/2 sessions, and connections with a request in flight. Started
 * after the grace period, it destroys them all `REAP_DELAY` ms later, so the server's close — which
 * waits for every connection — finishes in bounded time.
 */
export class ConnectionReaper {
  readonly #server: Server
  readonly #tracked = new Set<Closable>()
  #timer: NodeJS.Timeout | undefined

  constructor (server: Server) {
    this.#server = server
    // An HTTP/2 server's sessions: `app.close()` waits on them (Fastify closes only idle ones).
    server.on('session' as never, (session: Closable) => this.track(session))
    // An HTTP/2 session can be destroyed while its socket stays open, waiting for a peer that keeps the
    // connection (a client holding a stream it never reads). The server's close waits on that socket, and
    // an HTTP/2 server has no closeAllConnections(): its sockets are tracked themselves.
    const closeAll = (server as { closeAllConnections?: unknown }).closeAllConnections
    if (typeof closeAll !== 'function') server.on('connection', (socket: Duplex) => this.track(socket))
  }

  /** Tracks a socket or session until it closes. */
  track (item: Closable | Duplex): void {
    const closable = item as Closable
    if (this.#tracked.has(closable)) return
    this.#tracked.add(closable)
    closable.once('close', () => this.#tracked.delete(closable))
  }

  reapSoon (): void {
    if (this.#timer !== undefined) return
    const server = this.#server as Server & { closeIdleConnections?: () => void, closeAllConnections?: () => void }
    server.closeIdleConnections?.()
    this.#timer = setTimeout(() => {
      server.closeAllConnections?.()
      for (const item of [...this.#tracked]) item.destroy()
      this.#tracked.clear()
    }, REAP_DELAY)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
