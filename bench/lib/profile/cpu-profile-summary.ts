// Summarises a V8 CPU profile (`Profiler.stop`'s `profile`, the .cpuprofile format): self time by owner
// (our packages, Fastify, Node, V8), the top self-time functions, and the heaviest call paths into them.
import { classify, where } from './classify.ts'

export interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }>
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

/**
 * Markdown for one profile; `perUnit` divides times into µs per handshake or per message. The profiler's
 * sample deltas are wall-clock time (a process waiting for its CPU is charged too), so with `measuredMicros`
 * (the process's own CPU counter over the same phase) every time is scaled to it: shares from the profile,
 * totals from the counter.
 */
export function summariseCpuProfile (profile: CpuProfile, title: string, perUnit: { count: number, unit: string }, measuredMicros?: number, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i + 1] is how long sample i's stack ran (the last one gets the mean).
    const dt = profile.timeDeltas[i + 1] ?? (profile.endTime - profile.startTime) / profile.samples.length
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt)
  }
  let total = 0
  const byOwner = new Map<string, number>()
  const byFunction = new Map<string, { time: number, owner: string }>()
  for (const [id, t] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    const owner = classify(url, functionName)
    if (owner === 'idle' || functionName === '(root)') continue
    total += t
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + t)
    const key = where(url, functionName, lineNumber)
    const f = byFunction.get(key) ?? { time: 0, owner }
    f.time += t
    byFunction.set(key, f)
  }
  const scale = measuredMicros !== undefined && total > 0 ? measuredMicros / total : 1
  const us = (t: number): string => (scale * t / perUnit.count).toFixed(scale * t / perUnit.count >= 10 ? 0 : 1)
  const pct = (t: number): string => `${(100 * t / total).toFixed(1)} %`
  const out: string[] = [`#### ${title}`, '', `Busy time in the profile: ${(total / 1000).toFixed(0)} ms over ${perUnit.count.toLocaleString('en')} ${perUnit.unit}s` +
    (measuredMicros !== undefined ? `; the process's own CPU counter: ${(measuredMicros / perUnit.count).toFixed(0)} µs per ${perUnit.unit}, to which the times below are scaled.` : ` = ${us(total)} µs per ${perUnit.unit} (idle excluded).`), '']
  out.push('| owner | self µs/' + perUnit.unit + ' | share |', '| --- | ---: | ---: |')
  for (const [owner, t] of [...byOwner].sort((a, b) => b[1] - a[1])) out.push(`| ${owner} | ${us(t)} | ${pct(t)} |`)
  out.push('', `| top self-time functions | owner | self µs/${perUnit.unit} | share |`, '| --- | --- | ---: | ---: |')
  for (const [key, f] of [...byFunction].sort((a, b) => b[1].time - a[1].time).slice(0, top)) out.push(`| ${key.replace(/\|/g, '\\|')} | ${f.owner} | ${us(f.time)} | ${pct(f.time)} |`)

  // Heaviest stacks: the self time of each sampled node with its ancestors' names (collapsed, innermost last).
  const stacks = new Map<string, number>()
  for (const [id, t] of self) {
    const frames: string[] = []
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url, lineNumber } = byId.get(cur)!.callFrame
      if (functionName === '(root)' || functionName === '(idle)') continue
      frames.unshift(`${where(url, functionName, lineNumber)} [${classify(url, functionName).replace(/^ours: /, '')}]`)
    }
    if (frames.length === 0) continue
    const key = frames.slice(-7).join(' → ')
    stacks.set(key, (stacks.get(key) ?? 0) + t)
  }
  out.push('', 'Heaviest call paths (innermost 7 frames, self time of the last one):', '')
  for (const [key, t] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 12)) out.push(`- ${us(t)} µs (${pct(t)}): ${key}`)
  out.push('')
  return out.join('\n')
}

/** Self time per owner as fractions (for the comparison table in PROFILE.md). */
export function ownerShares (profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const shares = new Map<string, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const { functionName, url } = byId.get(profile.samples[i])!.callFrame
    const owner = classify(url, functionName)
    if (owner === 'idle' || functionName === '(root)') continue
    shares.set(owner, (shares.get(owner) ?? 0) + (profile.timeDeltas[i + 1] ?? 0))
  }
  return shares
}
