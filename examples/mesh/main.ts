// `npm run mesh`: starts [Client] --H1-- [Front] --H2-- [Sidecar --H1-- App] on loopback.
//   --config <file.json>   the topology (see README); the embedded default needs none
//   --workers <N>          the front on N processes (node:cluster)
import { parseArgs } from 'node:util'
import { defaultConfig, loadConfig, MeshConfigError, resolveConfig, type MeshConfig } from './config.ts'
import { withFreePorts } from './free-ports.ts'
import { startMesh } from './mesh.ts'
import { tryItLines } from './try-it.ts'

const out = (line = ''): void => { process.stdout.write(line + '\n') }
// `npm run mesh | head`: a reader that went away must not stop the mesh (or its drain).
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE') throw err })

let config: MeshConfig
try {
  const { values } = parseArgs({ options: { config: { type: 'string' }, workers: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help === true) {
    out('usage: npm run mesh [-- --config mesh.json] [-- --workers N]   (see examples/README.md)')
    process.exit(0)
  }
  config = values.config === undefined ? await withFreePorts(defaultConfig, (node, port) => out(`port ${port} (${node}) is busy: using a free one`)) : await loadConfig(values.config)
  if (values.workers !== undefined) config = resolveConfig({ ...config, front: { ...config.front, workers: Number(values.workers) } })
} catch (err) {
  process.stderr.write(`${err instanceof MeshConfigError ? err.message : String(err)}\n`)
  process.exit(2)
}

const mesh = await startMesh(config, { log: out })
out(`switchyard mesh on loopback:  [Client] --H1-- [Front :${mesh.ports.front}] --H2-- [Sidecar :${mesh.ports.sidecar} --H1-- App ${mesh.ports.apps.map((p) => `:${p}`).join(', ')}]`)
out(`  front   ${mesh.url}  (HTTP/1.1)`)
out(`  sidecar http://${config.host}:${mesh.ports.sidecar}  (HTTP/2 cleartext, prior knowledge)`)
for (const app of mesh.apps.list()) out(`  ${app.name.padEnd(7)} http://${app.address}  (HTTP/1.1; health-checked every ${config.app.healthCheckInterval} ms by the sidecar and the front)`)
out(`  front processes: ${config.front.workers}${config.front.workers === 1 ? ' (--workers N for more)' : ' (node:cluster, one port)'}`)
out(`  open the page (chat + live view of the mesh): ${mesh.url}/`)
for (const line of tryItLines(mesh.url, config.token, mesh.apps.list().at(-1)!.name)) out(line)
out(`  Ctrl-C drains: new upgrades get 503, open tunnels have ${config.front.shutdownGracePeriod / 1000} s, then close`)

let stopping = false
async function stop (signal: NodeJS.Signals): Promise<void> {
  if (stopping) process.exit(130) // a second Ctrl-C: stop now
  stopping = true
  const c = mesh.totals.snapshot().counters
  const open = (c['active.h2'] ?? 0) + (c['active.legacy'] ?? 0)
  out(`\n${signal}: draining — new upgrades refused (503); ${open} open tunnel(s) get up to ${config.front.shutdownGracePeriod} ms`)
  try {
    await mesh.close()
    out('mesh closed')
    process.exit(0)
  } catch (err) {
    process.stderr.write(`${String(err)}\n`)
    process.exit(1)
  }
}
process.on('SIGINT', (signal) => { void stop(signal) })
process.on('SIGTERM', (signal) => { void stop(signal) })
