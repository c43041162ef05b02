// Profiles what the bench measures (`pnpm --filter @switchyard/bench run profile [--pin] [--only cpu,heap,gc,alloc]`):
//   cpu    V8 CPU profiles of the proxies over one measured handshake phase and one 64 KiB echo phase
//          (core, legacy, the bare pipe as the floor; h1-h2-h1's two hops on handshakes), around the phase only
//   heap   heap snapshots before and after 1,000 idle tunnels (h1-h2-h1 front and sidecar; core), by constructor
//   gc     `--trace-gc` over one 64 KiB echo phase (core, legacy, bare-pipe, loaded-pipe)
//   alloc  V8's sampling heap profiler over the 64 KiB and 64 B echo phases (core, legacy): what allocates per message
// Raw files (.cpuprofile, .heapsnapshot, gc logs) and a markdown digest go to results/profile/.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ProxyMode } from './modes/mode.ts'
import { discoverModes } from './lib/discover.ts'
import type { ProxyLaunch } from './lib/mode-host.ts'
import { parseOptions } from './lib/options.ts'
import { enablePinning } from './lib/pin.ts'
import { killAllChildren, NodeChild } from './lib/processes.ts'
import { log, open, PHASES, startRig, type Phase, type Rig } from './lib/phases.ts'
import { summariseCpuProfile, type CpuProfile } from './lib/profile/cpu-profile-summary.ts'
import { summariseHeapGrowth } from './lib/profile/heap-snapshot-summary.ts'
import { MARK_END, MARK_START, summariseGcTrace } from './lib/profile/gc-trace-summary.ts'
import { summariseAllocations, type SamplingHeapProfile } from './lib/profile/allocation-summary.ts'

const OUT = fileURLToPath(new URL('./results/profile/', import.meta.url))
type Kind = 'cpu' | 'heap' | 'gc' | 'alloc'

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const onlyAt = argv.indexOf('--only')
  const only = new Set<Kind>(onlyAt >= 0 ? argv.splice(onlyAt, 2)[1].split(',') as Kind[] : ['cpu', 'heap', 'gc', 'alloc'])
  const options = parseOptions(argv)
  if (options.pin) enablePinning()
  mkdirSync(OUT, { recursive: true })
  const modes = await discoverModes()
  const byName = (name: string): ProxyMode => modes.find((m) => m.name === name)!
  const upstream = await NodeChild.start('echo-upstream', fileURLToPath(new URL('./lib/echo-upstream.ts', import.meta.url)), [], { role: 'measured' })
  const client = await NodeChild.start('load-client', fileURLToPath(new URL('./lib/load-client.ts', import.meta.url)), [], { role: 'client' })
  const digest: string[] = [`# Profile digest — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`, '',
    `${options.pin ? 'Pinned (client CPU 0, proxies and upstream CPU 1)' : 'Not pinned'}; built packages; workload as the full bench (${options.workload.handshakes} handshakes, ${options.workload.largeRoundTrips} round trips of 64 KiB, ${options.workload.smallRoundTrips} of 64 B, 50 tunnels).`, '']
  const rigFor = async (name: string, launch?: ProxyLaunch): Promise<Rig> => {
    const { rig, result } = await startRig(byName(name), client, upstream, options, launch)
    if (rig === null) throw new Error(`${name}: ${result.skipped ?? result.error}`)
    return rig
  }
  const write = (): void => writeFileSync(OUT + 'digest.md', digest.join('\n') + '\n')
  try {
    if (only.has('cpu')) {
      digest.push('## CPU profiles (self time; µs per handshake or per message)', '')
      for (const [name, phase] of [['core', 'handshakes'], ['legacy', 'handshakes'], ['bare-pipe', 'handshakes'], ['h1-h2-h1', 'handshakes'], ['core', 'large'], ['legacy', 'large'], ['bare-pipe', 'large']] as const) {
        const rig = await rigFor(name)
        try {
          const p = PHASES[phase] as Phase<{ count?: number, messages?: number }>
          await p.warmup(rig)
          const children = rig.host.nodeChildren()
          for (const c of children) {
            await c.call('inspect', { method: 'Profiler.enable' })
            await c.call('inspect', { method: 'Profiler.setSamplingInterval', params: { interval: 100 } })
            await c.call('inspect', { method: 'Profiler.start' })
          }
          const before = await Promise.all(children.map(async (c) => (await c.sample(false)).cpuMicros))
          const run = await p.measure(rig)
          const after = await Promise.all(children.map(async (c) => (await c.sample(false)).cpuMicros))
          const count = run.count ?? run.messages ?? 1
          for (const [i, c] of children.entries()) {
            const { profile } = await c.call<{ profile: CpuProfile }>('inspect', { method: 'Profiler.stop' })
            const file = `${OUT}cpu-${name}-${phase}-${i}.cpuprofile`
            writeFileSync(file, JSON.stringify(profile))
            digest.push(summariseCpuProfile(profile, `${name}, ${phase === 'handshakes' ? 'handshake phase' : '64 KiB echo phase'}${children.length > 1 ? ` (${c.name})` : ''}`,
              { count, unit: phase === 'handshakes' ? 'handshake' : 'message' }, after[i] - before[i]))
          }
          log(`profile: cpu ${name} ${phase} done`)
        } finally {
          await client.call('closeAll')
          await rig.host.stopAll()
        }
        write()
      }
    }

    if (only.has('heap')) {
      digest.push('## What an idle tunnel keeps on the heap (snapshots before and after 1,000 idle tunnels)', '')
      for (const name of ['h1-h2-h1', 'core', 'legacy']) {
        const rig = await rigFor(name)
        try {
          await open(rig, 10, false)
          await client.call('closeAll')
          const children = rig.host.nodeChildren()
          const before = await Promise.all(children.map((c, i) => c.call<string>('heapSnapshot', { file: `${OUT}heap-${name}-${i}-before.heapsnapshot` }, 120_000)))
          await open(rig, options.workload.idleTunnels, false)
          const after = await Promise.all(children.map((c, i) => c.call<string>('heapSnapshot', { file: `${OUT}heap-${name}-${i}-after.heapsnapshot` }, 120_000)))
          children.forEach((c, i) => digest.push(summariseHeapGrowth(before[i], after[i], options.workload.idleTunnels, `${name}: ${c.name}`)))
          log(`profile: heap ${name} done`)
        } finally {
          await client.call('closeAll')
          await rig.host.stopAll()
        }
        write()
      }
    }

    if (only.has('gc')) {
      digest.push('## Garbage collection over one 64 KiB echo phase (`--trace-gc`)', '')
      for (const name of ['core', 'legacy', 'bare-pipe', 'loaded-pipe']) {
        const file = `${OUT}gc-${name}.log`
        writeFileSync(file, '')
        const rig = await rigFor(name, { nodeArgs: ['--trace-gc'], stdoutFile: file })
        try {
          await PHASES.large.warmup(rig)
          appendFileSync(file, `${MARK_START}\n`)
          const run = await PHASES.large.measure(rig)
          appendFileSync(file, `${MARK_END}\n`)
          digest.push(summariseGcTrace(file, `${name}: proxy CPU ${((run.cpu.proxy ?? 0) / run.messages).toFixed(1)} µs per 64 KiB message`, run.messages, run.wallMs))
          log(`profile: gc ${name} done`)
        } finally {
          await client.call('closeAll')
          await rig.host.stopAll()
        }
        write()
      }
    }

    if (only.has('alloc')) {
      digest.push('## What allocates per message (V8 sampling heap profiler, collected objects included)', '')
      for (const [name, phase] of [['core', 'large'], ['legacy', 'large'], ['core', 'small'], ['bare-pipe', 'large']] as const) {
        const rig = await rigFor(name)
        try {
          const p = PHASES[phase]
          await p.warmup(rig)
          const [front] = rig.host.nodeChildren()
          await front.call('inspect', { method: 'HeapProfiler.enable' })
          await front.call('inspect', {
            method: 'HeapProfiler.startSampling',
            params: { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }
          })
          const run = await p.measure(rig)
          const { profile } = await front.call<{ profile: SamplingHeapProfile }>('inspect', { method: 'HeapProfiler.stopSampling' }, 120_000)
          writeFileSync(`${OUT}alloc-${name}-${phase}.heapprofile`, JSON.stringify(profile))
          digest.push(summariseAllocations(profile, `${name}, ${phase === 'large' ? '64 KiB' : '64 B'} echo`, run.messages))
          log(`profile: alloc ${name} ${phase} done`)
        } finally {
          await client.call('closeAll')
          await rig.host.stopAll()
        }
        write()
      }
    }
  } finally {
    await Promise.all([client.stop(), upstream.stop()])
  }
  write()
  log(`profile: digest in ${OUT}digest.md`)
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllChildren()
    process.exit(130)
  })
}

main().catch((err: Error) => {
  killAllChildren()
  process.stderr.write(`profile: ${err.stack ?? err.message}\n`)
  process.exitCode = 1
})
