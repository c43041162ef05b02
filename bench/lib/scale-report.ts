import type { BenchOptions } from './options.ts'
import type { ModeResult } from './phases.ts'
import { num } from './figures.ts'
import type { ScaleStep } from './scale.ts'

/** The scale phase's markdown: the largest step per front, the HTTP/2 step of 1,000 tunnels, and how figures grow. */
export function renderScale (results: ModeResult[], options: BenchOptions): string[] {
  const scaled = results.filter((r) => r.scale !== undefined && r.scale.steps.length > 0)
  if (scaled.length === 0) return []
  const out: string[] = ['### Scale', '']
  out.push(`One fresh front per mode; idle tunnels opened in steps (${options.workload.scaleSteps.map((n) => n.toLocaleString('en')).join(', ')}) by a second ` +
    'load-client process and held open; at each step: proxy memory growth per tunnel over the fresh front (after a forced GC), proxy CPU per 64 B message ' +
    `with ${options.workload.scaleConcurrency} messages in flight spread over every open tunnel (${options.workload.scaleRoundTrips.toLocaleString('en')} round trips), ` +
    `and ${options.workload.scaleProbes} handshakes made one at a time while the tunnels stay open.`, '')

  out.push('| mode | idle tunnels | RSS KiB/tunnel | heap KiB/tunnel | per process (RSS / heap KiB) | CPU µs/msg 64 B | handshake p50 / p99 ms | HTTP/2 connections at the sidecar |')
  out.push('| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |')
  for (const r of scaled) {
    const scale = r.scale!
    out.push(`| ${r.mode} | 0 | | | | | ${num(scale.baseline.p50)} / ${num(scale.baseline.p99)} | |`)
    for (const s of scale.steps) out.push(stepRow(r.mode, s))
  }
  out.push('')

  for (const r of scaled) {
    const scale = r.scale!
    const first = scale.steps[0]
    const last = scale.steps.at(-1)!
    const growth = (a: number | null, b: number | null): string => a !== null && b !== null && a > 0 ? `${(b / a).toFixed(2)}x` : '—'
    out.push(`- **${r.mode}**, ${first.tunnels.toLocaleString('en')} → ${last.tunnels.toLocaleString('en')} tunnels: RSS per tunnel ${growth(first.rssPerTunnel, last.rssPerTunnel)}, ` +
      `heap per tunnel ${growth(first.heapPerTunnel, last.heapPerTunnel)}, CPU per message ${growth(first.cpuPerMessage, last.cpuPerMessage)}; ` +
      `handshake p99 with ${last.tunnels.toLocaleString('en')} open ${num(last.handshake.p99)} ms (${num(scale.baseline.p99)} ms with none)` +
      (scale.capped !== undefined ? `. Capped at ${last.tunnels.toLocaleString('en')} of ${scale.capped.requested.toLocaleString('en')}: the open-files limit is ${scale.capped.limit.toLocaleString('en')} per process and a tunnel holds ${scale.capped.fdsPerTunnel} in it` : ''))
    const h2 = scale.steps.find((s) => s.tunnels === 1000 && s.info.sessions !== undefined)
    if (h2 !== undefined) {
      out.push(`- **${r.mode}**, 1,000 tunnels over HTTP/2: ${h2.info.sessions} connection${h2.info.sessions === 1 ? '' : 's'} at the sidecar; ` +
        `${num((h2.rssPerTunnel ?? 0) / 1024)} KiB RSS per tunnel (${h2.perProcess.map((p) => `${p.name.replace(/^.*#listen/, '')} ${num(p.rssPerTunnel / 1024)}`).join(', ')}), ` +
        `${num(h2.cpuPerMessage)} µs CPU per 64 B message, handshake p99 ${num(h2.handshake.p99)} ms`)
    }
  }
  return out
}

function stepRow (mode: string, s: ScaleStep): string {
  const kib = (v: number | null): string => num(v === null ? null : v / 1024)
  const per = s.perProcess.map((p) => `${p.name.replace(/^.*#listen/, '').replace(/^$/, 'proxy')} ${kib(p.rssPerTunnel)} / ${kib(p.heapPerTunnel)}`).join('; ')
  return `| ${mode} | ${s.tunnels.toLocaleString('en')} | ${kib(s.rssPerTunnel)} | ${kib(s.heapPerTunnel)} | ${per} | ${num(s.cpuPerMessage)} | ` +
    `${num(s.handshake.p50)} / ${num(s.handshake.p99)} | ${s.info.sessions ?? ''} |`
}
