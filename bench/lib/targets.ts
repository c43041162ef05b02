// The performance targets the report checks, each a ratio between two modes of the same run, with its
// verdict: met, or not and by how much. The list is the performance issue's (peers a user would pick
// instead: nginx, HAProxy, nghttpx, @fastify/http-proxy, and the bare Node pipe as the floor), then the
// earlier per-package targets that still hold.
import type { ModeResult } from './phases.ts'
import { cpuPerHandshake, handshakesPerSecond, kibPerTunnel, mibPerSecond, num, perMessage } from './figures.ts'

/** A figure of one mode, with its unit for the verdict line; null when not measured. */
interface Figure { label: string, unit: string, of: (r: ModeResult) => number | null, /** higher is better */ higher: boolean }

const F = {
  handshakes: { label: 'handshakes/s', unit: '/s', of: handshakesPerSecond, higher: true },
  cpuHandshake: { label: 'proxy CPU per handshake', unit: 'µs', of: cpuPerHandshake, higher: false },
  cpu64: { label: 'proxy CPU per 64 B message', unit: 'µs', of: (r) => perMessage(r.small), higher: false },
  cpu64k: { label: 'proxy CPU per 64 KiB message', unit: 'µs', of: (r) => perMessage(r.large), higher: false },
  bulk: { label: 'bulk MiB/s one way', unit: 'MiB/s', of: mibPerSecond, higher: true },
  idle: { label: 'RSS per idle tunnel', unit: 'KiB', of: (r) => kibPerTunnel(r, 'rss'), higher: false }
} satisfies Record<string, Figure>

export interface Target {
  /** The section the line is printed under. */
  group: string
  figure: Figure
  mode: string
  /** The mode it is compared with, and the ratio that meets the target: ≤ bound for costs, ≥ for rates. */
  vs: string
  bound: number
  /** Also shown beside the verdict (context, not a target): the same figure against these modes. */
  alsoVs?: string[]
}

const PAIR = 'H1→H2→H1 (both hops summed)'
const NEW = 'New-style upgrades (`core`, empty chain) and legacy'
const PEERS = 'Fastify users\' baseline (`@fastify/http-proxy`)'
const EARLIER = 'Earlier package targets'

/** Every target, in the order the report prints them. */
export const TARGETS: Target[] = [
  { group: NEW, figure: F.handshakes, mode: 'core', vs: 'nginx', bound: 0.8, alsoVs: ['haproxy-h1', 'bare-pipe'] },
  { group: NEW, figure: F.cpuHandshake, mode: 'core', vs: 'bare-pipe', bound: 1.1, alsoVs: ['nginx', 'haproxy-h1'] },
  { group: NEW, figure: F.cpuHandshake, mode: 'legacy', vs: 'bare-pipe', bound: 1.1 },
  { group: NEW, figure: F.cpu64k, mode: 'core', vs: 'nginx', bound: 1, alsoVs: ['haproxy-h1', 'bare-pipe', 'loaded-pipe'] },
  { group: NEW, figure: F.cpu64k, mode: 'legacy', vs: 'bare-pipe', bound: 0.9, alsoVs: ['loaded-pipe'] },
  { group: NEW, figure: F.cpu64, mode: 'core', vs: 'bare-pipe', bound: 1.05, alsoVs: ['nginx', 'haproxy-h1'] },
  { group: NEW, figure: F.cpu64, mode: 'legacy', vs: 'bare-pipe', bound: 1.05 },
  { group: NEW, figure: F.cpu64, mode: 'core-filters', vs: 'core', bound: 1.3 },
  { group: PAIR, figure: F.handshakes, mode: 'h1-h2-h1', vs: 'haproxy-h1-h2-h1', bound: 1 },
  { group: PAIR, figure: F.handshakes, mode: 'h1-h2-h1', vs: 'nghttpx-h1-h2-h1', bound: 1 },
  { group: PAIR, figure: F.idle, mode: 'h1-h2-h1', vs: 'nghttpx-h1-h2-h1', bound: 1, alsoVs: ['haproxy-h1-h2-h1'] },
  { group: PAIR, figure: F.cpu64k, mode: 'h1-h2-h1', vs: 'haproxy-h1-h2-h1', bound: 1, alsoVs: ['nghttpx-h1-h2-h1'] },
  { group: PAIR, figure: F.bulk, mode: 'h1-h2-h1', vs: 'haproxy-h1-h2-h1', bound: 1, alsoVs: ['nghttpx-h1-h2-h1'] },
  // "≥ 3x less CPU per message": the baseline's CPU over ours ≥ 3, i.e. ours ≤ 1/3 of it.
  { group: PEERS, figure: F.cpu64, mode: 'core', vs: 'fastify-http-proxy', bound: 1 / 3, alsoVs: ['node-http-proxy'] },
  { group: PEERS, figure: F.cpu64k, mode: 'core', vs: 'fastify-http-proxy', bound: 1 / 3, alsoVs: ['node-http-proxy'] },
  { group: PEERS, figure: F.handshakes, mode: 'core', vs: 'fastify-http-proxy', bound: 2, alsoVs: ['node-http-proxy'] },
  { group: EARLIER, figure: F.cpu64k, mode: 'core-filters', vs: 'core', bound: 1.5 },
  { group: EARLIER, figure: F.cpu64, mode: 'core-headers-only', vs: 'core', bound: 1.1 },
  { group: EARLIER, figure: F.idle, mode: 'legacy', vs: 'bare-pipe', bound: 1 }
]

export type Verdict = 'met' | 'not met' | 'not measured'
export interface Checked { target: Target, verdict: Verdict, ratio: number | null, line: string }

/** Evaluates every target against a run's results (modes not run or not measured say so). */
export function checkTargets (results: ModeResult[]): Checked[] {
  const find = (name: string): ModeResult | undefined => results.find((r) => r.mode === name && r.skipped === undefined && r.error === undefined)
  return TARGETS.map((target) => {
    const { figure, bound } = target
    const a = find(target.mode)
    const b = find(target.vs)
    const va = a !== undefined ? figure.of(a) : null
    const vb = b !== undefined ? figure.of(b) : null
    const head = `**${target.mode}** ${figure.label} vs ${target.vs}`
    const want = `target ${figure.higher ? '≥' : '≤'} ${boundText(bound)}`
    if (va === null || vb === null || vb <= 0) {
      const why = [a === undefined ? `${target.mode} did not run` : va === null ? `${target.mode} not measured` : '',
        b === undefined ? `${target.vs} did not run` : vb === null ? `${target.vs} not measured` : ''].filter((s) => s !== '').join(', ')
      return { target, verdict: 'not measured', ratio: null, line: `- ${head}: — (${want}): **not measured** (${why})` }
    }
    const ratio = va / vb
    const met = figure.higher ? ratio >= bound : ratio <= bound
    // By how much: the change in our figure that would reach the bound (or the room left under it).
    const gap = figure.higher ? bound / ratio - 1 : 1 - bound / ratio
    const by = met
      ? `margin ${pct(Math.abs(gap))}`
      : figure.higher ? `needs ${pct(gap)} more` : `needs ${pct(gap)} less`
    const also = (target.alsoVs ?? []).map((m) => {
      const r = find(m)
      const v = r !== undefined ? figure.of(r) : null
      return v !== null && v > 0 ? `${m} ${(va / v).toFixed(2)}x` : null
    }).filter((s) => s !== null)
    const line = `- ${head}: **${ratioOrInverse(ratio, bound)}** (${num(va)} vs ${num(vb)} ${figure.unit}; ${want}): ` +
      `**${met ? 'met' : 'NOT met'}**, ${by}` + (also.length > 0 ? `. Also: ${also.join(', ')}` : '')
    return { target, verdict: met ? 'met' : 'not met', ratio, line }
  })
}

function boundText (bound: number): string {
  return bound < 1 && Math.abs(1 / bound - Math.round(1 / bound)) < 1e-9 ? `1/${Math.round(1 / bound)}x` : `${bound}x`
}

/** A ratio below a 1/N bound also reads as "N.Nx less". */
function ratioOrInverse (ratio: number, bound: number): string {
  return bound < 1 && boundText(bound).startsWith('1/') ? `${ratio.toFixed(2)}x (${(1 / ratio).toFixed(2)}x less)` : `${ratio.toFixed(2)}x`
}

function pct (v: number): string {
  return v < 0.1 ? `${(v * 100).toFixed(1)} %` : `${Math.round(v * 100)} %`
}

/** The markdown lines: one group heading per group, then its targets. */
export function renderTargets (results: ModeResult[]): string[] {
  const checked = checkTargets(results)
  const out: string[] = []
  let group = ''
  for (const c of checked) {
    if (c.target.group !== group) {
      group = c.target.group
      out.push('', `${group}:`, '')
    }
    out.push(c.line)
  }
  const met = checked.filter((c) => c.verdict === 'met').length
  const notMet = checked.filter((c) => c.verdict === 'not met').length
  out.push('', `Targets: ${met} met, ${notMet} not met, ${checked.length - met - notMet} not measured.`)
  return out
}
