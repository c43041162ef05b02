import { cpus } from 'node:os'
import type { ProxyMode } from '../modes/mode.ts'
import type { BenchOptions } from './options.ts'
import type { EchoResult, ModeResult } from './phases.ts'

const MiB = 1024 * 1024
const DASH = '—'

/** The run's markdown: header, the main table with ratios, targets, a detail table, errors. */
export function renderReport (results: ModeResult[], modes: ProxyMode[], options: BenchOptions, startedAt: Date, wallMs: number): string {
  const direct = results.find((r) => r.mode === 'direct')
  const pipe = results.find((r) => r.mode === 'bare-pipe')
  const ran = results.filter((r) => r.skipped === undefined && r.error === undefined)
  const w = options.workload
  const cpu = cpus()
  const out: string[] = []

  out.push(`## Switchyard bench — ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`, '')
  out.push(`${options.quick ? 'Quick' : 'Full'} run, ${(wallMs / 1000).toFixed(0)} s. Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}. ` +
    `Upgrade type \`${options.upgradeType}\`; every process (client, echo upstream, each proxy) is its own Node process on 127.0.0.1.`, '')
  out.push('| mode | CPU µs/msg 64 B | × pipe | CPU µs/msg 64 KiB | × pipe | MiB/s one way | × direct | handshakes/s | × direct | RSS MiB / 1k idle | heap MiB / 1k idle |')
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of ran) {
    out.push(row([
      r.mode,
      num(perMessage(r.small)), ratio(perMessage(r.small), perMessage(pipe?.small)),
      num(perMessage(r.large)), ratio(perMessage(r.large), perMessage(pipe?.large)),
      num(mibPerSecond(r)), ratio(mibPerSecond(r), mibPerSecond(direct)),
      num(handshakesPerSecond(r)), ratio(handshakesPerSecond(r), handshakesPerSecond(direct)),
      num(perThousand(r, 'rss')), num(perThousand(r, 'heapUsed'))
    ]))
  }
  out.push('')

  const checks: string[] = []
  for (const mode of modes) {
    const r = ran.find((x) => x.mode === mode.name)
    if (r === undefined || mode.targets === undefined) continue
    const { cpuVsPipe, memoryVsPipe, cpuVsMode } = mode.targets
    if (cpuVsMode !== undefined) {
      const base = ran.find((x) => x.mode === cpuVsMode.mode)
      const small = ratioValue(perMessage(r.small), perMessage(base?.small))
      const large = ratioValue(perMessage(r.large), perMessage(base?.large))
      const met = small !== null && large !== null && small <= cpuVsMode.max && large <= cpuVsMode.max
      checks.push(`- **${mode.name}** CPU per message vs ${cpuVsMode.mode}: 64 B ${ratioText(small)}, 64 KiB ${ratioText(large)} — target ≤ ${cpuVsMode.max}x: **${small === null || large === null ? `not measured${base === undefined ? ` (run ${cpuVsMode.mode} too)` : ''}` : met ? 'met' : 'NOT met'}**`)
    }
    if (cpuVsPipe !== undefined) {
      const small = ratioValue(perMessage(r.small), perMessage(pipe?.small))
      const large = ratioValue(perMessage(r.large), perMessage(pipe?.large))
      const met = small !== null && large !== null && small <= cpuVsPipe && large <= cpuVsPipe
      checks.push(`- **${mode.name}** CPU per message vs the bare pipe: 64 B ${ratioText(small)}, 64 KiB ${ratioText(large)} — target ≤ ${cpuVsPipe}x: **${small === null || large === null ? 'not measured' : met ? 'met' : 'NOT met'}**`)
    }
    if (memoryVsPipe !== undefined) {
      const rss = ratioValue(perThousand(r, 'rss'), perThousand(pipe, 'rss'))
      checks.push(`- **${mode.name}** RSS per idle tunnel vs the bare pipe: ${ratioText(rss)} — target ≤ ${memoryVsPipe}x: **${rss === null ? 'not measured' : rss <= memoryVsPipe ? 'met' : 'NOT met'}**`)
    }
  }
  if (checks.length > 0) out.push('Targets:', '', ...checks, '')

  out.push('Detail (wall-clock rates seen by the client, and where the CPU went):', '')
  out.push('| mode | 64 B round trips/s | 64 KiB round trips/s | proxy CPU µs/handshake | proxy CPU ms/GiB streamed | client CPU µs/msg 64 B | upstream CPU µs/msg 64 B |')
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of ran) {
    out.push(row([
      r.mode,
      num(roundTripsPerSecond(r.small)), num(roundTripsPerSecond(r.large)),
      num(r.handshakes?.cpu.proxy != null ? r.handshakes.cpu.proxy / r.handshakes.count : null),
      num(r.stream?.cpu.proxy != null ? r.stream.cpu.proxy / 1000 / (r.stream.bytes / (1024 * MiB)) : null),
      num(r.small !== undefined ? r.small.cpu.client / r.small.messages : null),
      num(r.small !== undefined ? r.small.cpu.upstream / r.small.messages : null)
    ]))
  }
  out.push('')

  out.push(`Workload: ${w.tunnels} concurrent tunnels, ${w.window} message${w.window === 1 ? '' : 's'} in flight per tunnel; ` +
    `${w.smallRoundTrips.toLocaleString('en')} round trips of 64 B and ${w.largeRoundTrips.toLocaleString('en')} of 64 KiB; ` +
    `${(w.streamBytes / MiB).toFixed(0)} MiB streamed one way on one tunnel; ${w.handshakes.toLocaleString('en')} handshakes, ${w.handshakeConcurrency} at a time; ` +
    `${w.idleTunnels.toLocaleString('en')} idle tunnels (proxy memory after a forced GC, minus the same before them, on a fresh proxy` +
    (w.memoryRepeats > 1 ? `, median of ${w.memoryRepeats} fresh proxies). ` : '). ') + `Each measured phase follows an unmeasured warm-up of ${Math.round(w.warmupFraction * 100)} % of its work` +
    (w.repeats > 1 ? ` and runs ${w.repeats} times; the median run is shown (by proxy CPU per message for the echo phases, by wall time for the others). ` : '. ') +
    'A round trip is 2 messages through the proxy (one each way); CPU per message = proxy CPU (user + system, all its processes) / messages.', '')
  const notes: string[] = []
  for (const r of results) {
    if (r.skipped !== undefined) notes.push(`- ${r.mode}: skipped — ${r.skipped}`)
    if (r.error !== undefined) notes.push(`- ${r.mode}: did not start — ${r.error}`)
    for (const [phase, error] of Object.entries(r.phaseErrors)) notes.push(`- ${r.mode}: phase ${phase} failed — ${error}`)
  }
  if (notes.length > 0) out.push('Problems:', '', ...notes, '')
  return out.join('\n')
}

function perMessage (e: EchoResult | undefined): number | null {
  return e?.cpu.proxy != null ? e.cpu.proxy / e.messages : null
}

function roundTripsPerSecond (e: EchoResult | undefined): number | null {
  return e !== undefined ? e.roundTrips / (e.wallMs / 1000) : null
}

function mibPerSecond (r: ModeResult | undefined): number | null {
  return r?.stream !== undefined ? r.stream.bytes / MiB / (r.stream.wallMs / 1000) : null
}

function handshakesPerSecond (r: ModeResult | undefined): number | null {
  return r?.handshakes !== undefined ? r.handshakes.count / (r.handshakes.wallMs / 1000) : null
}

function perThousand (r: ModeResult | undefined, field: 'rss' | 'heapUsed'): number | null {
  const m = r?.memory
  const v = m?.[field]
  return m !== undefined && v != null ? v / MiB * (1000 / m.tunnels) : null
}

function ratioValue (a: number | null, b: number | null): number | null {
  return a !== null && b !== null && b > 0 ? a / b : null
}

function ratioText (v: number | null): string {
  return v === null ? DASH : `${v.toFixed(2)}x`
}

function ratio (a: number | null, b: number | null): string {
  return ratioText(ratioValue(a, b))
}

function num (v: number | null): string {
  if (v === null || !Number.isFinite(v)) return DASH
  const abs = Math.abs(v)
  if (abs >= 1000) return Math.round(v).toLocaleString('en')
  if (abs >= 100) return v.toFixed(0)
  if (abs >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function row (cells: string[]): string {
  return `| ${cells.join(' | ')} |`
}
