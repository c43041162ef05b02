// One front process of `--workers N` (started by workers.ts through node:cluster).
import type { AppAction } from './app-instances.ts'
import { startFront, type Front } from './front.ts'
import { throttle, TotalsMirror } from './stats-feed.ts'
import { WORKER_ENV, type PrimaryMessage, type WorkerMessage, type WorkerSetup } from './workers.ts'

const { config, sidecarPort, apps } = JSON.parse(process.env[WORKER_ENV] ?? '{}') as WorkerSetup
const send = (message: WorkerMessage): void => { if (process.connected) process.send!(message) }
// The app's instances live in the primary: a page button's action goes there and its answer comes back.
const acting = new Map<number, (found: boolean) => void>()
let nextAction = 0
const control = (action: AppAction, name: string): Promise<boolean> => new Promise((resolve) => {
  const id = nextAction++
  acting.set(id, resolve)
  send({ type: 'mesh:app', id, action, name })
})
const mirror = new TotalsMirror()
let front: Front | undefined
const report = (): void => { if (front !== undefined) send({ type: 'mesh:counters', counters: front.counters() }) }

let draining: Promise<void> | undefined
function drain (): Promise<void> {
  draining ??= (async () => {
    try {
      await front?.close()
      process.exit(0)
    } catch (err) {
      process.stderr.write(`front worker: ${String(err)}\n`)
      process.exit(1)
    }
  })()
  return draining
}

process.on('message', (m: PrimaryMessage) => {
  if (m.type === 'mesh:totals') mirror.update(m.snapshot)
  else if (m.type === 'mesh:drain') void drain()
  else if (m.type === 'mesh:app-done') {
    acting.get(m.id)?.(m.found)
    acting.delete(m.id)
  }
})
// Ctrl-C reaches every process of the terminal's group; the primary's `mesh:drain` may come second.
process.on('SIGINT', () => { void drain() })
process.on('SIGTERM', () => { void drain() })
process.on('disconnect', () => { void drain() })

front = await startFront({
  config,
  sidecarPort,
  apps,
  control,
  totals: mirror,
  onChange: throttle(report),
  accessLog: (line) => send({ type: 'mesh:access', line })
})
report()
send({ type: 'mesh:listening', port: front.port })
