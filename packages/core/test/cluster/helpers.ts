import { once } from 'node:events'
import type { Server } from 'node:net'
import type { TestContext } from 'node:test'
import { Cluster, type ClusterLog } from '../../src/cluster/cluster.ts'
import { Stats } from '../../src/stats.ts'
import type { ClusterOptions } from '../../src/plugin-options.ts'

export interface Built {
  cluster: Cluster
  stats: Stats
  warnings: Array<{ obj: object, msg?: string }>
  /** `cluster.<name>.<stat>` */
  stat (name: string): number
}

/** A cluster with real stats and a log that keeps its warnings; closed when the test ends. */
export function makeCluster (t: TestContext, options: ClusterOptions, name = 'c'): Built {
  const stats = new Stats()
  const warnings: Built['warnings'] = []
  const log: ClusterLog = { info () {}, warn (obj, msg) { warnings.push({ obj, msg }) } }
  const cluster = new Cluster(name, options, { stats, log })
  t.after(() => cluster.close())
  return { cluster, stats, warnings, stat: (stat) => stats.get(`cluster.${name}.${stat}`) }
}

export async function listen (server: Server, t?: TestContext): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  if (t !== undefined) t.after(() => new Promise<void>((resolve) => { server.close(() => resolve()) }))
  return (server.address() as { port: number }).port
}

/** A port nothing listens on (taken, then released). */
export async function closedPort (): Promise<number> {
  const net = await import('node:net')
  const server = net.createServer()
  const port = await listen(server)
  await new Promise<void>((resolve) => { server.close(() => resolve()) })
  return port
}

/**
 * The next `event` from `emitter` whose arguments pass `filter`. The cluster's own timers are unref'd
 * (they never keep a process alive); a ref'd handle that does nothing keeps this test's loop running
 * until the event comes. It never fires: it is not a wait.
 */
export async function next<T extends unknown[]> (emitter: NodeJS.EventEmitter, event: string, filter: (...args: T) => boolean = () => true): Promise<T> {
  const hold = setInterval(() => {}, 2 ** 30)
  try {
    return await new Promise<T>((resolve) => {
      const listener = (...args: unknown[]): void => {
        if (!filter(...args as T)) return
        emitter.off(event, listener)
        resolve(args as T)
      }
      emitter.on(event, listener)
    })
  } finally {
    clearInterval(hold)
  }
}

const ignored = new Set(['TTYWrap', 'PipeWrap', 'FSReqCallback', 'FileHandle', 'SignalWrap', 'ProcessWrap', 'Immediate'])

/** Active handles by type (sockets, servers, timers), without the test runner's own pipes. */
export function handles (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) if (!ignored.has(type)) counts[type] = (counts[type] ?? 0) + 1
  return counts
}

/**
 * Waits (turn by turn of the event loop, never a timer) until no kind of handle outnumbers `baseline`
 * (one the test runner or an earlier test was still closing may be gone by then), and fails naming
 * what is left after a bounded number of turns.
 */
export async function backToBaseline (baseline: Record<string, number>): Promise<void> {
  const within = (): boolean => Object.entries(handles()).every(([type, n]) => n <= (baseline[type] ?? 0))
  for (let turn = 0; turn < 2000 && !within(); turn++) await new Promise(resolve => setImmediate(resolve))
  if (!within()) throw new Error(`handles left: ${JSON.stringify(handles())}, baseline ${JSON.stringify(baseline)}`)
}
