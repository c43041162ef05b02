import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { startApp } from './app.ts'
import { ChatRoom } from './chat-room.ts'

/** What the page can do to an instance. */
export type AppAction = 'kill' | 'restart'

export interface AppInstance {
  /** `app-1`, `app-2`, … */
  name: string
  port: number
  /** `host:port`, as the clusters list it. */
  address: string
  /** False between a kill and its restart. */
  running: boolean
}

interface Running {
  app: FastifyInstance
  sockets: Set<Socket>
}

/**
 * The app's instances, each its own server on its own port, sharing one chat room. `kill` is what a crash
 * does to an instance: every connection it holds (tunnels included) is cut and its port closes, so the
 * health checks in front of it start failing; `restart` listens on the same port again.
 */
export class AppInstances {
  readonly #host: string
  readonly #room = new ChatRoom()
  readonly #instances: AppInstance[] = []
  readonly #running = new Map<string, Running>()

  constructor (host: string) {
    this.#host = host
  }

  /** Starts one instance per port (0: any free port). */
  async start (ports: number[]): Promise<void> {
    for (const [i, port] of ports.entries()) {
      const instance: AppInstance = { name: `app-${i + 1}`, port, address: '', running: false }
      this.#instances.push(instance)
      await this.#listen(instance)
    }
  }

  list (): AppInstance[] {
    return this.#instances.map((i) => ({ ...i }))
  }

  /** Runs `action` on the instance named `name`; false when there is none by that name. */
  async act (action: AppAction, name: string): Promise<boolean> {
    const instance = this.#instances.find((i) => i.name === name)
    if (instance === undefined) return false
    if (action === 'kill') await this.#stop(instance, true)
    else if (!instance.running) await this.#listen(instance)
    return true
  }

  async close (): Promise<void> {
    for (const instance of this.#instances) await this.#stop(instance, false)
  }

  async #listen (instance: AppInstance): Promise<void> {
    const { app, port } = await startApp(this.#host, instance.port, instance.name, this.#room)
    const sockets = new Set<Socket>()
    app.server.on('connection', (socket: Socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    this.#running.set(instance.name, { app, sockets })
    instance.port = port
    instance.address = `${this.#host}:${port}`
    instance.running = true
  }

  async #stop (instance: AppInstance, abruptly: boolean): Promise<void> {
    const running = this.#running.get(instance.name)
    if (running === undefined) return
    this.#running.delete(instance.name)
    instance.running = false
    // A crash: no close frame, no FIN dance; the kernel resets what was open.
    if (abruptly) for (const socket of running.sockets) socket.resetAndDestroy()
    await running.app.close()
  }
}
