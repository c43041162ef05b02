import { cpus } from 'node:os'
import type { ProxyMode } from '../modes/mode.ts'
import type { BenchOptions } from './options.ts'
import type { ModeResult } from './phases.ts'
import { pinningText } from './pin.ts'
import { renderScale } from './scale-report.ts'
import { renderTargets } from './targets.ts'
import {
  cpuPerGiB, cpuPerHandshake, handshakesPerSecond, kibPerTunnel, mibPerSecond, num, perMessage, ratioText, ratioValue, roundTripsPerSecond
} from './figures.ts'

const MiB = 1024 * 1024

/** The run's markdown: header, the main table, the targets with verdicts, the scale phase, a detail table, problems. */
export function renderReport (results: ModeResult[], modes: ProxyMode[], options: BenchOptions, startedAt: Date, wallMs: number): string {
  const direct = results.find((r) => r.mode === 'direct')
  const pipe = results.find((r) => r.mode === 'bare-pipe')
  const ran = results.filter((r) => r.skipped === undefined && r.error === undefined)
  const w = options.workload
  const cpu = cpus()
  const out: string[] = []

  out.push(`## Switchyard bench — ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`, '')
  out.push(`${options.quick ? 'Quick' : 'Full'} run, ${(wallMs / 1000).toFixed(0)} s. Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}. ` +
    `${pinningText()} Upgrade type \`${options.upgradeType}\`; every party is its own process on 127.0.0.1; CPU is each process's own counters ` +
    '(Node: `process.cpuUsage()`; nginx, HAProxy, nghttpx: /proc schedstat of the process and its children), summed over a mode\'s processes.', '')
  out.push('| mode | handshakes/s | CPU µs/handshake | CPU µs/msg 64 B | × pipe | CPU µs/msg 64 KiB | × pipe | MiB/s one way | CPU ms/GiB | RSS KiB/idle tunnel | heap KiB/idle tunnel |')
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of ran) {
    out.push(row([
      r.mode,
      num(handshakesPerSecond(r)), num(cpuPerHandshake(r)),
      num(perMessage(r.small)), ratioText(ratioValue(perMessage(r.small), perMessage(pipe?.small))),
      num(perMessage(r.large)), ratioText(ratioValue(perMessage(r.large), perMessage(pipe?.large))),
      num(mibPerSecond(r)), num(cpuPerGiB(r)),
      num(kibPerTunnel(r, 'rss')), num(kibPerTunnel(r, 'heapUsed'))
    ]))
  }
  out.push('')
  out.push('Targets (ratios of this run\'s medians; "margin" is how much worse our figure could be and still meet the target, "needs" how much better it must get):')
  out.push(...renderTargets(results), '')

  const scale = renderScale(results, options)
  if (scale.length > 0) out.push(...scale, '')

  out.push('Detail (wall-clock rates seen by the client, and the load on either side of the proxy):', '')
  out.push('| mode | × direct handshakes/s | 64 B round trips/s | 64 KiB round trips/s | × direct MiB/s | client CPU µs/msg 64 B | upstream CPU µs/msg 64 B |')
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of ran) {
    out.push(row([
      r.mode,
      ratioText(ratioValue(handshakesPerSecond(r), handshakesPerSecond(direct))),
      num(roundTripsPerSecond(r.small)), num(roundTripsPerSecond(r.large)),
      ratioText(ratioValue(mibPerSecond(r), mibPerSecond(direct))),
      num(r.small !== undefined ? r.small.cpu.client / r.small.messages : null),
      num(r.small !== undefined ? r.small.cpu.upstream / r.small.messages : null)
    ]))
  }
  out.push('')

  out.push('Modes:', '')
  for (const mode of modes) out.push(`- \`${mode.name}\`: ${mode.description}`)
  out.push('')

  out.push(`Workload: ${w.tunnels} concurrent tunnels, ${w.window} message${w.window === 1 ? '' : 's'} in flight per tunnel; ` +
    `${w.smallRoundTrips.toLocaleString('en')} round trips of 64 B and ${w.largeRoundTrips.toLocaleString('en')} of 64 KiB; ` +
    `${(w.streamBytes / MiB).toFixed(0)} MiB streamed one way on one tunnel; ${w.handshakes.toLocaleString('en')} handshakes, ${w.handshakeConcurrency} at a time; ` +
    `${w.idleTunnels.toLocaleString('en')} idle tunnels (proxy memory after a forced GC, minus the same before them, on a fresh proxy` +
    (w.memoryRepeats > 1 ? `, median of ${w.memoryRepeats} fresh proxies, the modes interleaved). ` : '). ') + `Each measured phase follows an unmeasured warm-up of ${Math.round(w.warmupFraction * 100)} % of its work` +
    (w.repeats > 1 ? ` and runs ${w.repeats} times with the modes interleaved (order rotated each time); the median run is shown (by proxy CPU per message for the echo phases, by wall time for the others). ` : '. ') +
    'A round trip is 2 messages through the proxy (one each way); CPU per message = proxy CPU (user + system, all its processes) / messages. ' +
    'Non-Node peers report RSS only (no heap).', '')
  const notes: string[] = []
  for (const r of results) {
    if (r.skipped !== undefined) notes.push(`- ${r.mode}: skipped — ${r.skipped}`)
    if (r.error !== undefined) notes.push(`- ${r.mode}: did not start — ${r.error}`)
    for (const [phase, error] of Object.entries(r.phaseErrors)) notes.push(`- ${r.mode}: phase ${phase} failed — ${error}`)
  }
  if (notes.length > 0) out.push('Skipped and failed:', '', ...notes, '')
  return out.join('\n')
}

function row (cells: string[]): string {
  return `| ${cells.join(' | ')} |`
}
