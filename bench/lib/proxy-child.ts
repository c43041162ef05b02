// A forked proxy process: runs one mode's `listen` export and answers the orchestrator's samples.
// argv: <mode module URL> <export name> <JSON options>
import type { Listen, ListenOptions } from '../modes/mode.ts'
import { announceReady, sampleSelf, serveRpc } from './rpc.ts'

const [moduleUrl, exportName, optionsJson] = process.argv.slice(2)
const mod = await import(moduleUrl) as Record<string, unknown>
const listen = mod[exportName] as Listen | undefined
if (typeof listen !== 'function') throw new Error(`${moduleUrl} has no export ${exportName}`)
const server = await listen(JSON.parse(optionsJson) as ListenOptions)

serveRpc({
  sample: ({ gc }: { gc: boolean }) => sampleSelf(gc),
  close: () => server.close()
})
announceReady(server.port)
