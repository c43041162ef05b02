// A forked proxy process: runs one mode's `listen` export and answers the orchestrator's samples.
// argv: <mode module URL> <export name> <JSON options>
import { Session } from 'node:inspector'
import { writeHeapSnapshot } from 'node:v8'
import type { Listen, Listening, ListenOptions } from '../modes/mode.ts'
import { announceFailure, announceReady, sampleSelf, serveRpc } from './rpc.ts'

const [moduleUrl, exportName, optionsJson] = process.argv.slice(2)
let server: Listening
try {
  const mod = await import(moduleUrl) as Record<string, unknown>
  const listen = mod[exportName] as Listen | undefined
  if (typeof listen !== 'function') throw new Error(`${moduleUrl} has no export ${exportName}`)
  server = await listen(JSON.parse(optionsJson) as ListenOptions)
} catch (err) {
  announceFailure(err, (err as Error)?.name === 'UnavailableError')
  await new Promise(() => {})
  throw err
}

let inspector: Session | undefined
let connected = false
serveRpc({
  sample: ({ gc }: { gc: boolean }) => sampleSelf(gc),
  // What the mode reports about itself (e.g. HTTP/2 sessions accepted), for the scale phases.
  info: () => server.info?.() ?? null,
  // A heap snapshot after a full GC (bench/profile.ts): the file's path.
  heapSnapshot: ({ file }: { file: string }) => {
    globalThis.gc?.()
    return writeHeapSnapshot(file)
  },
  // A DevTools-protocol call in this process (bench/profile.ts: Profiler.start/stop, HeapProfiler sampling).
  inspect: ({ method, params }: { method: string, params?: object }) => new Promise((resolve, reject) => {
    inspector ??= new Session()
    if (!connected) { inspector.connect(); connected = true }
    inspector.post(method, params ?? {}, (err, result) => { if (err !== null) reject(err); else resolve(result) })
  }),
  close: () => server.close()
})
announceReady(server.port)
