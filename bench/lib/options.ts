import { PHASE_NAMES, type PhaseName } from '../modes/mode.ts'
import type { UpgradeType } from './wire.ts'

/** The sizes of one run. A round trip is 2 messages through the proxy (one each way). */
export interface Workload {
  /** Concurrent tunnels for the echo phases. */
  tunnels: number
  /** Messages in flight per tunnel in the echo phases. */
  window: number
  smallRoundTrips: number
  largeRoundTrips: number
  /** Bytes streamed one way (upstream → client) in the throughput phase. */
  streamBytes: number
  handshakes: number
  handshakeConcurrency: number
  idleTunnels: number
  /** Each measured phase is preceded by this fraction of its work, unmeasured (JIT, pools, buffers). */
  warmupFraction: number
  /** Measured runs per phase; the report keeps the median run (by the phase's headline number). */
  repeats: number
  /** Memory runs, each on a freshly started proxy, interleaved across modes; the report keeps the median of each field. */
  memoryRepeats: number
  /** Scale phase: idle tunnels held open at each step (cumulative on one fresh front), e.g. 100, 1,000, 10,000. */
  scaleSteps: number[]
  /** Scale phase: 64 B round trips at each step, spread over every open tunnel, `scaleConcurrency` in flight. */
  scaleRoundTrips: number
  scaleConcurrency: number
  /** Scale phase: handshakes timed one at a time at each step, while the idle tunnels stay open. */
  scaleProbes: number
}

/** What `--phases` selects: the measured phases, and `scale` (lib/scale.ts). */
export type Selectable = PhaseName | 'scale'
export const SELECTABLE: readonly Selectable[] = [...PHASE_NAMES, 'scale']

export interface BenchOptions {
  quick: boolean
  /** Modes to run (direct always runs: it is the reference); null = every available mode. */
  modes: string[] | null
  upgradeType: UpgradeType
  /** `--pin`: load client on CPU 0, everything measured on CPU 1. */
  pin: boolean
  /** Phases to run (default: all). */
  phases: Set<Selectable>
  workload: Workload
  /** Bound on every single phase call. */
  phaseTimeoutMs: number
}

const MiB = 1024 * 1024

const FULL: Workload = {
  tunnels: 50,
  window: 1,
  smallRoundTrips: 60_000,
  largeRoundTrips: 3_000,
  streamBytes: 512 * MiB,
  handshakes: 2_000,
  handshakeConcurrency: 16,
  idleTunnels: 1_000,
  warmupFraction: 0.1,
  repeats: 5,
  memoryRepeats: 5,
  scaleSteps: [100, 1_000, 10_000],
  scaleRoundTrips: 20_000,
  scaleConcurrency: 50,
  scaleProbes: 500
}

const QUICK: Workload = {
  ...FULL,
  smallRoundTrips: 10_000,
  largeRoundTrips: 500,
  streamBytes: 128 * MiB,
  handshakes: 400,
  repeats: 1,
  memoryRepeats: 1,
  scaleSteps: [100, 500],
  scaleRoundTrips: 2_000,
  scaleProbes: 50
}

const USAGE = `usage: run.ts [--quick] [--pin] [--modes a,b] [--phases a,b] [--upgrade websocket|bench] [--tunnels N] [--window N]
  --quick            smaller counts, one run per phase (a smoke run)
  --pin              load client on CPU 0, proxies and echo upstream on CPU 1 (taskset)
  --modes a,b        run only these modes (direct always runs: it is the reference)
  --phases a,b       run only these phases: ${SELECTABLE.join(', ')} (default: all)
  --upgrade TYPE     upgrade type the client speaks: websocket (default; masked binary frames) or bench (raw bytes)
  --tunnels N        concurrent tunnels in the echo phases (default 50)
  --window N         messages in flight per tunnel in the echo phases (default 1)`

/** Parses argv; throws with the usage text on anything unknown. */
export function parseOptions (argv: string[]): BenchOptions {
  const options: BenchOptions = { quick: false, modes: null, upgradeType: 'websocket', pin: false, phases: new Set(SELECTABLE), workload: FULL, phaseTimeoutMs: 60_000 }
  const overrides: Partial<Workload> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const value = (): string => {
      const v = inline ?? argv[++i]
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`)
      return v
    }
    if (flag === '--quick') {
      options.quick = true
    } else if (flag === '--pin') {
      options.pin = true
    } else if (flag === '--phases') {
      const phases = value().split(',').map((m) => m.trim()).filter((m) => m !== '')
      const unknown = phases.filter((p) => !(SELECTABLE as readonly string[]).includes(p))
      if (unknown.length > 0) throw new Error(`unknown phase ${unknown.join(', ')}; known: ${SELECTABLE.join(', ')}\n${USAGE}`)
      options.phases = new Set(phases as Selectable[])
    } else if (flag === '--modes') {
      options.modes = value().split(',').map((m) => m.trim()).filter((m) => m !== '')
    } else if (flag === '--upgrade') {
      const type = value()
      if (type !== 'websocket' && type !== 'bench') throw new Error(`--upgrade must be websocket or bench\n${USAGE}`)
      options.upgradeType = type
    } else if (flag === '--tunnels' || flag === '--window') {
      const n = Number(value())
      if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`${flag} must be an integer from 1 to 1000\n${USAGE}`)
      overrides[flag === '--tunnels' ? 'tunnels' : 'window'] = n
    } else if (flag === '--help' || flag === '-h') {
      throw new Error(USAGE)
    } else {
      throw new Error(`unknown argument ${arg}\n${USAGE}`)
    }
  }
  options.workload = { ...(options.quick ? QUICK : FULL), ...overrides }
  return options
}
