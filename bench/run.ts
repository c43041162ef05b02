// One command: `pnpm --filter @switchyard/bench run bench` (flags: --quick, --pin, --modes a,b, --phases a,b, --upgrade …).
// Starts the echo upstream and the load client (each its own process), then every mode's proxy
// process(es), runs the phases, prints the markdown report and writes it to results/latest.md.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { discoverModes, selectModes } from './lib/discover.ts'
import { parseOptions } from './lib/options.ts'
import { enablePinning } from './lib/pin.ts'
import { killAllChildren, NodeChild } from './lib/processes.ts'
import { log, runModes, type ModeResult } from './lib/phases.ts'
import { renderReport } from './lib/report.ts'

/** Where the report goes (`BENCH_RESULTS` moves it, e.g. for the smoke test). */
const RESULTS = (process.env.BENCH_RESULTS ?? fileURLToPath(new URL('./results/', import.meta.url))).replace(/\/?$/, '/')

/** `run.ts --render results/latest.json`: the report of an earlier run again (after a change to the report's code). */
async function render (file: string): Promise<void> {
  const saved = JSON.parse(await readFile(file, 'utf8')) as { startedAt: string, wallMs?: number, argv?: string[], results: ModeResult[] }
  const options = parseOptions(saved.argv ?? [])
  if (saved.argv?.includes('--pin') === true) enablePinning()
  const modes = await discoverModes()
  process.stdout.write(renderReport(saved.results, modes, options, new Date(saved.startedAt), saved.wallMs ?? 0) + '\n')
}

async function main (): Promise<void> {
  const renderAt = process.argv.indexOf('--render')
  if (renderAt >= 0) return render(process.argv[renderAt + 1])
  const options = parseOptions(process.argv.slice(2))
  if (options.pin) enablePinning()
  const modes = selectModes(await discoverModes(), options.modes)
  const startedAt = new Date()
  const t0 = performance.now()
  log(`bench: ${options.quick ? 'quick' : 'full'} run${options.pin ? ', pinned' : ''}, modes ${modes.map((m) => m.name).join(', ')}`)

  const upstreamEntry = fileURLToPath(new URL('./lib/echo-upstream.ts', import.meta.url))
  const clientEntry = fileURLToPath(new URL('./lib/load-client.ts', import.meta.url))
  const [upstream, client] = await Promise.all([
    NodeChild.start('echo-upstream', upstreamEntry, [], { role: 'measured' }),
    NodeChild.start('load-client', clientEntry, [], { role: 'client' })
  ])
  let results: ModeResult[]
  try {
    results = await runModes(modes, client, upstream, options)
  } finally {
    await Promise.all([client.stop(), upstream.stop()])
  }

  const wallMs = performance.now() - t0
  const report = renderReport(results, modes, options, startedAt, wallMs)
  process.stdout.write(report + '\n')
  await mkdir(RESULTS, { recursive: true })
  await writeFile(RESULTS + 'latest.md', report + '\n')
  await writeFile(RESULTS + 'latest.json', JSON.stringify({ startedAt, wallMs, argv: process.argv.slice(2), results }, null, 2) + '\n')
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
