import cluster, { type Worker } from 'node:cluster'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { MeshConfig } from './config.ts'
import type { AppEndpoint } from './app-cluster.ts'
import type { AppAction } from './app-instances.ts'
import type { Counters } from './counters.ts'
import { throttle, type MeshSnapshot, type MeshTotals } from './stats-feed.ts'

/** The environment variable that hands a front worker its part of the topology. */
export const WORKER_ENV = 'SWITCHYARD_MESH_WORKER'

/** Worker → primary. */
export type WorkerMessage =
  | { type: 'mesh:listening', port: number }
  | { type: 'mesh:counters', counters: Counters }
  | { type: 'mesh:access', line: string }
  | { type: 'mesh:app', id: number, action: AppAction, name: string }
/** Primary → worker. */
export type PrimaryMessage =
  | { type: 'mesh:totals', snapshot: MeshSnapshot }
  | { type: 'mesh:drain' }
  | { type: 'mesh:app-done', id: number, found: boolean }

export interface WorkerSetup {
  config: MeshConfig
  sidecarPort: number
  apps: AppEndpoint[]
}

export interface FrontWorkersOptions extends WorkerSetup {
  host: string
  totals: MeshTotals
  log: (line: string) => void
  /** The app's instances live in the primary: a worker's page buttons act through it. */
  control: (action: AppAction, name: string) => Promise<boolean>
}

/**
 * Runs the front on `config.front.workers` processes sharing one port (node:cluster; the primary
 * hands connections out round robin). Each worker reports its counters to the primary, which sums
 * them with the sidecar's (`MeshTotals`) and sends the totals back to every worker, so whichever
 * worker serves the page's event stream shows the whole mesh.
 */
export async function startFrontWorkers (options: FrontWorkersOptions): Promise<{ port: number, close (): Promise<void> }> {
  const { config, sidecarPort, apps, totals, log, control } = options
  // The worker runs from source like the rest of the examples, whatever the parent was started with.
  cluster.setupPrimary({
    exec: fileURLToPath(new URL('./front-worker.ts', import.meta.url)),
    execArgv: ['--conditions=source', '--import', 'tsx'],
    args: []
  })
  const setup: WorkerSetup = { config, sidecarPort, apps }
  const workers: Worker[] = []
  let closing = false
  const broadcast = throttle(() => {
    const message: PrimaryMessage = { type: 'mesh:totals', snapshot: totals.snapshot() }
    for (const w of workers) if (w.isConnected()) w.send(message)
  }, 50)
  totals.on('change', broadcast)

  const started = Array.from({ length: config.front.workers }, async () => {
    const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify(setup) })
    workers.push(worker)
    const node = `front#${worker.id}`
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'mesh:counters') totals.report(node, m.counters)
      else if (m.type === 'mesh:access') log(`[${node}] ${m.line}`)
      else if (m.type === 'mesh:app') {
        void control(m.action, m.name).then((found) => {
          const done: PrimaryMessage = { type: 'mesh:app-done', id: m.id, found }
          if (worker.isConnected()) worker.send(done)
        })
      }
    })
    worker.on('exit', (code, signal) => {
      totals.forget(node)
      if (!closing) log(`[${node}] exited (${signal ?? code}); the other front processes go on`)
    })
    return await new Promise<number>((resolve, reject) => {
      worker.on('message', (m: WorkerMessage) => { if (m.type === 'mesh:listening') resolve(m.port) })
      worker.once('exit', (code) => reject(new Error(`front worker ${worker.id} exited (${code}) before listening`)))
    })
  })

  const close = async (): Promise<void> => {
    closing = true
    const exits = workers.filter((w) => !w.isDead()).map((w) => once(w, 'exit'))
    const drain: PrimaryMessage = { type: 'mesh:drain' }
    for (const w of workers) if (w.isConnected()) w.send(drain)
    await Promise.all(exits)
    totals.off('change', broadcast)
  }
  try {
    const ports = await Promise.all(started)
    return { port: ports[0]!, close }
  } catch (err) {
    await close()
    throw err
  }
}
