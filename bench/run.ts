// One command: `pnpm --filter @switchyard/bench run bench` (flags: --quick, --modes a,b, --upgrade websocket|bench).
// Starts the echo upstream and the load client (each its own process), then for every mode its proxy
// process(es), runs the phases, prints the markdown report and writes it to results/latest.md.
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ProxyMode } from './modes/mode.ts'
import { parseOptions, type BenchOptions } from './lib/options.ts'
import { killAllChildren, NodeChild } from './lib/processes.ts'
import { log, runModes, type ModeResult } from './lib/phases.ts'
import { renderReport } from './lib/report.ts'

const MODES_DIR = fileURLToPath(new URL('./modes/', import.meta.url))
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url))

/** Every `modes/*.ts` that exports `mode`, in run order. */
async function discoverModes (): Promise<ProxyMode[]> {
  const modes: ProxyMode[] = []
  for (const file of (await readdir(MODES_DIR)).filter((f) => f.endsWith('.ts')).sort()) {
    const mod = await import(pathToFileURL(MODES_DIR + file).href) as { mode?: ProxyMode }
    if (mod.mode !== undefined) modes.push(mod.mode)
  }
  return modes.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name))
}

function select (all: ProxyMode[], options: BenchOptions): ProxyMode[] {
  if (options.modes === null) return all
  const unknown = options.modes.filter((m) => !all.some((mode) => mode.name === m))
  if (unknown.length > 0) throw new Error(`unknown mode ${unknown.join(', ')}; known: ${all.map((m) => m.name).join(', ')}`)
  return all.filter((mode) => mode.name === 'direct' || options.modes?.includes(mode.name))
}

async function main (): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  const modes = select(await discoverModes(), options)
  const startedAt = new Date()
  const t0 = performance.now()
  log(`bench: ${options.quick ? 'quick' : 'full'} run, modes ${modes.map((m) => m.name).join(', ')}`)

  const upstreamEntry = fileURLToPath(new URL('./lib/echo-upstream.ts', import.meta.url))
  const clientEntry = fileURLToPath(new URL('./lib/load-client.ts', import.meta.url))
  const [upstream, client] = await Promise.all([
    NodeChild.start('echo-upstream', upstreamEntry, []),
    NodeChild.start('load-client', clientEntry, [])
  ])
  let results: ModeResult[]
  try {
    results = await runModes(modes, client, upstream, options)
  } finally {
    await Promise.all([client.stop(), upstream.stop()])
  }

  const report = renderReport(results, modes, options, startedAt, performance.now() - t0)
  process.stdout.write(report + '\n')
  await mkdir(RESULTS, { recursive: true })
  await writeFile(RESULTS + 'latest.md', report + '\n')
  log(`bench: written to ${RESULTS}latest.md`)
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllChildren()
    process.exit(130)
  })
}

main().catch((err: Error) => {
  killAllChildren()
  process.stderr.write(`bench: ${err.message}\n`)
  process.exitCode = 1
})
