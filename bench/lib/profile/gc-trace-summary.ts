// `--trace-gc` lines of one measured phase, counted by kind and reason, with their pause times.
import { readFileSync } from 'node:fs'

/** The marker profile.ts writes into a proxy's stdout file around the measured phase. */
export const MARK_START = '=== bench phase start ==='
export const MARK_END = '=== bench phase end ==='

/** Markdown for the GC lines between the markers; `messages` gives the per-message figures. */
export function summariseGcTrace (file: string, title: string, messages: number, wallMs: number): string {
  const text = readFileSync(file, 'utf8')
  const start = text.lastIndexOf(MARK_START)
  const end = text.lastIndexOf(MARK_END)
  const lines = text.slice(start, end).split('\n')
  const kinds = new Map<string, { count: number, pauseMs: number }>()
  const reasons = new Map<string, number>()
  let heapMin = Infinity
  let heapMax = 0
  for (const line of lines) {
    // [pid:isolate]  1234 ms: Scavenge 3.9 (4.0) -> 3.2 (5.0) MB, 28.71 / 0.00 ms  (average mu = …, current mu = …) allocation failure;
    const m = /ms: (Scavenge|Mark-Compact \(reduce\)|Mark-Compact|Minor Mark-Compact|Mark-sweep) ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+) \/ ([\d.]+) ms(?:.*?\) ([^;]*);)?/.exec(line)
    if (m === null) continue
    const kind = kinds.get(m[1]) ?? { count: 0, pauseMs: 0 }
    kind.count++
    kind.pauseMs += Number(m[4])
    kinds.set(m[1], kind)
    const reason = `${m[1]}: ${(m[6] ?? '').trim() || '(none given)'}`
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    heapMin = Math.min(heapMin, Number(m[3]))
    heapMax = Math.max(heapMax, Number(m[2]))
  }
  const out = [`#### ${title}`, '', `${messages.toLocaleString('en')} messages in ${(wallMs / 1000).toFixed(1)} s; JS heap between ${heapMin === Infinity ? '—' : heapMin} and ${heapMax} MB.`, '',
    '| GC | count | per 1,000 messages | pause ms total | pause µs per message |', '| --- | ---: | ---: | ---: | ---: |']
  for (const [kind, k] of kinds) {
    out.push(`| ${kind} | ${k.count} | ${(1000 * k.count / messages).toFixed(2)} | ${k.pauseMs.toFixed(1)} | ${(1000 * k.pauseMs / messages).toFixed(2)} |`)
  }
  out.push('', 'Reasons: ' + [...reasons].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ×${n}`).join('; '), '')
  return out.join('\n')
}
