import { UnavailableError, type Endpoint, type PhaseName, type ProxyMode } from '../modes/mode.ts'
import type { BenchOptions } from './options.ts'
import type { MeasuredProcess, NodeChild } from './processes.ts'
import { ProcessModeHost, type ProxyLaunch } from './mode-host.ts'
import { runScale, type ScaleResult } from './scale.ts'

/** CPU (µs, user + system) spent over one measured phase, per role. `proxy` is null with no proxy (direct). */
export interface Cost { proxy: number | null, upstream: number, client: number }

export interface EchoResult { payloadBytes: number, roundTrips: number, messages: number, wallMs: number, cpu: Cost }
export interface StreamResult { bytes: number, wallMs: number, cpu: Cost }
export interface HandshakeResult { count: number, wallMs: number, cpu: Cost }
/** Proxy memory growth (bytes) from the GC'd baseline to `tunnels` idle tunnels open, GC'd; null with no proxy. */
export interface MemoryResult { tunnels: number, rss: number | null, heapUsed: number | null }

export interface ModeResult {
  mode: string
  description: string
  /** Why the mode did not run here. */
  skipped?: string
  /** Why the mode's proxy did not start. */
  error?: string
  phaseErrors: Partial<Record<PhaseName | 'scale', string>>
  memory?: MemoryResult
  handshakes?: HandshakeResult
  small?: EchoResult
  large?: EchoResult
  stream?: StreamResult
  scale?: ScaleResult
}

/** A mode that started: its proxies, the endpoint the client dials, and its results so far. */
export interface Rig {
  mode: ProxyMode
  host: ProcessModeHost
  client: NodeChild
  upstream: NodeChild
  proxies: MeasuredProcess[]
  target: Endpoint
  options: BenchOptions
  result: ModeResult
}

/** A phase measured `repeats` times per mode, after one unmeasured warm-up; the median run by `key` is kept. */
export interface Phase<T> {
  warmup (rig: Rig): Promise<unknown>
  measure (rig: Rig): Promise<T>
  /** Lower is better; the median by this is reported. */
  key (run: T): number
  /** One progress line about a run. */
  describe (run: T): string
}

export type RepeatedPhase = 'handshakes' | 'small' | 'large' | 'stream'

/** Whether `rig` runs phase `name` (the run's `--phases` and the mode's own list). */
function runs (rig: Rig, name: PhaseName): boolean {
  return rig.options.phases.has(name) && (rig.mode.phases === undefined || rig.mode.phases.includes(name))
}

/** Starts a mode's processes; a mode that cannot run here is marked skipped, one that fails to start errored. */
export async function startRig (mode: ProxyMode, client: NodeChild, upstream: NodeChild, options: BenchOptions, launch?: ProxyLaunch): Promise<{ rig: Rig | null, result: ModeResult }> {
  const result: ModeResult = { mode: mode.name, description: mode.description, phaseErrors: {} }
  const reason = await mode.unavailable?.() ?? null
  if (reason !== null) {
    result.skipped = reason
    log(`${mode.name}: skipped: ${reason}`)
    return { rig: null, result }
  }
  const host = new ProcessModeHost(upstream, launch)
  try {
    const target = await mode.start(host, { host: '127.0.0.1', port: upstream.port })
    return { rig: { mode, host, client, upstream, proxies: host.processes, target, options, result }, result }
  } catch (err) {
    await host.stopAll()
    if (err instanceof UnavailableError) {
      result.skipped = firstLine(err)
      log(`${mode.name}: skipped: ${result.skipped}`)
    } else {
      result.error = firstLine(err)
      log(`${mode.name}: did not start: ${result.error}`)
    }
    return { rig: null, result }
  }
}

/**
 * Starts every mode's proxies up front, measures memory on fresh proxies, then runs each phase
 * with the modes interleaved (mode order rotated per repeat), so a change in background load
 * over the run hits every mode alike and the ratios stay fair; the scale phase last, on fresh
 * fronts. Stops everything at the end.
 */
export async function runModes (modes: ProxyMode[], client: NodeChild, upstream: NodeChild, options: BenchOptions): Promise<ModeResult[]> {
  const results: ModeResult[] = []
  const rigs: Rig[] = []
  try {
    for (const mode of modes) {
      const { rig, result } = await startRig(mode, client, upstream, options)
      results.push(result)
      if (rig !== null) rigs.push(rig)
    }

    // Memory first, on fresh proxies (restarted for each repeat, the modes interleaved): buffers freed by
    // the busy phases, or by an earlier repeat, would be reused by the idle tunnels and hide their growth.
    const memoryRigs = rigs.filter((rig) => rig.proxies.length > 0 && runs(rig, 'memory'))
    const memoryRuns = new Map<Rig, MemoryResult[]>(memoryRigs.map((rig) => [rig, []]))
    for (let r = 0; r < (memoryRigs.length > 0 ? options.workload.memoryRepeats : 0); r++) {
      log(`memory: run ${r + 1} of ${options.workload.memoryRepeats}`)
      for (let i = 0; i < memoryRigs.length; i++) {
        const rig = memoryRigs[(i + r) % memoryRigs.length]
        if (rig.result.phaseErrors.memory !== undefined) continue
        await guarded(rig, 'memory', async () => {
          if (r > 0) await restart(rig)
          const run = await measureMemory(rig)
          memoryRuns.get(rig)?.push(run)
          log(`  memory ${rig.result.mode}: ${run.rss === null ? '—' : (run.rss / run.tunnels / 1024).toFixed(1)} KiB RSS/tunnel`)
        })
      }
    }
    for (const [rig, list] of memoryRuns) {
      if (list.length === 0) continue
      const median = (field: 'rss' | 'heapUsed'): number | null => {
        const values = list.map((m) => m[field]).filter((v): v is number => v !== null).sort((a, b) => a - b)
        return values.length > 0 ? values[Math.floor((values.length - 1) / 2)] : null
      }
      rig.result.memory = { tunnels: list[0].tunnels, rss: median('rss'), heapUsed: median('heapUsed') }
    }

    for (const name of Object.keys(PHASES) as RepeatedPhase[]) {
      const phase = PHASES[name] as Phase<unknown>
      const phaseRigs = rigs.filter((rig) => runs(rig, name))
      if (phaseRigs.length === 0) continue
      const runsOf = new Map<Rig, unknown[]>(phaseRigs.map((rig) => [rig, []]))
      log(`${name}: warm-up`)
      for (const rig of phaseRigs) await guarded(rig, name, () => phase.warmup(rig))
      for (let r = 0; r < options.workload.repeats; r++) {
        log(`${name}: run ${r + 1} of ${options.workload.repeats}`)
        for (let i = 0; i < phaseRigs.length; i++) {
          const rig = phaseRigs[(i + r) % phaseRigs.length]
          if (rig.result.phaseErrors[name] !== undefined) continue
          await guarded(rig, name, async () => {
            const run = await phase.measure(rig)
            runsOf.get(rig)?.push(run)
            log(`  ${name} ${rig.result.mode}: ${phase.describe(run)}`)
          })
        }
      }
      for (const [rig, list] of runsOf) {
        if (list.length === 0 || rig.result.phaseErrors[name] !== undefined) continue
        list.sort((a, b) => phase.key(a) - phase.key(b))
        ;(rig.result as unknown as Record<string, unknown>)[name] = list[Math.floor((list.length - 1) / 2)]
      }
    }

    if (options.phases.has('scale')) {
      for (const rig of rigs.filter((r) => r.mode.scale !== undefined)) {
        // Every other mode stopped: the front under test has the machine (and the open-files limit) to itself.
        for (const other of rigs) if (other !== rig) await other.host.stopAll()
        await guarded(rig, 'scale', async () => {
          await restart(rig)
          rig.result.scale = await runScale(rig)
        })
      }
    }
    return results
  } finally {
    for (const rig of rigs) await rig.host.stopAll()
  }
}

/** Runs one step of a phase for one mode; a failure marks that mode's phase failed and the run goes on. */
export async function guarded (rig: Rig, phase: PhaseName | 'scale', step: () => Promise<unknown>): Promise<void> {
  try {
    await step()
  } catch (err) {
    rig.result.phaseErrors[phase] ??= firstLine(err)
    log(`${rig.result.mode}: ${phase} failed: ${firstLine(err)}`)
  } finally {
    await rig.client.call('closeAll', undefined, 30_000).catch(() => {})
  }
}

/** Stops the mode's processes and starts them again (fresh memory). */
export async function restart (rig: Rig): Promise<void> {
  await rig.host.stopAll()
  rig.target = await rig.mode.start(rig.host, { host: '127.0.0.1', port: rig.upstream.port })
}

export async function measureMemory (rig: Rig): Promise<MemoryResult> {
  const { idleTunnels } = rig.options.workload
  if (rig.proxies.length === 0) return { tunnels: idleTunnels, rss: null, heapUsed: null }
  // A few tunnels first, so code paths run once (lazy init, JIT) without leaving much freed memory to reuse.
  await open(rig, 10, false)
  await rig.client.call('closeAll')
  const before = await settledSamples(rig)
  await open(rig, idleTunnels, false)
  const after = await settledSamples(rig)
  const delta = (field: 'rss' | 'heapUsed'): number | null => {
    if (rig.proxies.length === 0) return null
    let sum = 0
    for (let i = 0; i < before.length; i++) {
      const a = after[i][field]
      const b = before[i][field]
      if (a === null || b === null) return null
      sum += a - b
    }
    return sum
  }
  return { tunnels: idleTunnels, rss: delta('rss'), heapUsed: delta('heapUsed') }
}

/** Proxy samples after a full GC and a pause, so pages the GC freed are back with the OS. */
export async function settledSamples (rig: Rig): Promise<Array<{ rss: number, heapUsed: number | null }>> {
  await Promise.all(rig.proxies.map((p) => p.sample(true)))
  await new Promise((resolve) => setTimeout(resolve, 200))
  return Promise.all(rig.proxies.map((p) => p.sample(true)))
}

export const PHASES: { [K in RepeatedPhase]: Phase<NonNullable<ModeResult[K]>> } = {
  handshakes: {
    warmup: (rig) => handshakes(rig, Math.ceil(rig.options.workload.handshakes * rig.options.workload.warmupFraction)),
    async measure (rig) {
      const { value, cpu } = await measured(rig, () => handshakes(rig, rig.options.workload.handshakes))
      return { count: value.count, wallMs: value.wallMs, cpu }
    },
    key: (r) => r.wallMs / r.count,
    describe: (r) => `${Math.round(r.count / r.wallMs * 1000)} handshakes/s` + perUnit(r.cpu.proxy, r.count, 'µs proxy CPU/handshake')
  },
  small: echoPhase(64, (o) => o.workload.smallRoundTrips),
  large: echoPhase(64 * 1024, (o) => o.workload.largeRoundTrips),
  stream: {
    warmup: (rig) => stream(rig, Math.ceil(rig.options.workload.streamBytes * rig.options.workload.warmupFraction)),
    async measure (rig) {
      const { value, cpu } = await measured(rig, () => stream(rig, rig.options.workload.streamBytes))
      return { bytes: value.bytes, wallMs: value.wallMs, cpu }
    },
    key: (r) => r.wallMs / r.bytes,
    describe: (r) => `${Math.round(r.bytes / 1048576 / r.wallMs * 1000)} MiB/s` + perUnit(r.cpu.proxy, r.bytes / 1048576, 'µs proxy CPU/MiB')
  }
}

function perUnit (cpu: number | null, units: number, label: string): string {
  return cpu === null ? '' : `, ${(cpu / units).toFixed(2)} ${label}`
}

/** Echoes of `payloadBytes` over `workload.tunnels` tunnels; the tunnels are opened before and closed after, unmeasured. */
function echoPhase (payloadBytes: number, roundTrips: (o: BenchOptions) => number): Phase<EchoResult> {
  const run = (rig: Rig, n: number): Promise<{ roundTrips: number, wallMs: number }> => rig.client.call('echo', {
    payloadBytes, roundTrips: n, window: rig.options.workload.window, type: rig.options.upgradeType, timeoutMs: rig.options.phaseTimeoutMs
  }, rig.options.phaseTimeoutMs + 5_000)
  return {
    async warmup (rig) {
      await open(rig, rig.options.workload.tunnels, true)
      await run(rig, Math.ceil(roundTrips(rig.options) * rig.options.workload.warmupFraction))
    },
    async measure (rig) {
      await open(rig, rig.options.workload.tunnels, true)
      const { value, cpu } = await measured(rig, () => run(rig, roundTrips(rig.options)))
      await rig.client.call('closeAll', undefined, 30_000)
      return { payloadBytes, roundTrips: value.roundTrips, messages: 2 * value.roundTrips, wallMs: value.wallMs, cpu }
    },
    // Proxy CPU per message; wall time for direct, which has no proxy.
    key: (r) => (r.cpu.proxy ?? r.wallMs) / r.messages,
    describe: (r) => `${Math.round(r.roundTrips / r.wallMs * 1000)} round trips/s` + perUnit(r.cpu.proxy, r.messages, 'µs proxy CPU/msg')
  }
}

export function handshakes (rig: Rig, count: number): Promise<{ count: number, wallMs: number }> {
  return rig.client.call('handshakes', {
    port: rig.target.port, count, concurrency: rig.options.workload.handshakeConcurrency, type: rig.options.upgradeType, timeoutMs: rig.options.phaseTimeoutMs
  }, rig.options.phaseTimeoutMs + 5_000)
}

function stream (rig: Rig, bytes: number): Promise<{ bytes: number, wallMs: number }> {
  return rig.client.call('stream', {
    port: rig.target.port, bytes, type: rig.options.upgradeType, timeoutMs: rig.options.phaseTimeoutMs
  }, rig.options.phaseTimeoutMs + 5_000)
}

export function open (rig: Rig, count: number, verify: boolean): Promise<unknown> {
  return rig.client.call('open', {
    port: rig.target.port, count, concurrency: 50, type: rig.options.upgradeType, verify, timeoutMs: rig.options.phaseTimeoutMs
  }, rig.options.phaseTimeoutMs + 5_000)
}

/** Runs `fn` between two CPU samples of every process (upstream, client, the mode's proxies). */
export async function measured<T> (rig: Rig, fn: () => Promise<T>): Promise<{ value: T, cpu: Cost }> {
  const sampleAll = (): Promise<number[]> => Promise.all([rig.upstream, rig.client, ...rig.proxies].map(async (p) => (await p.sample(false)).cpuMicros))
  const before = await sampleAll()
  const value = await fn()
  const after = await sampleAll()
  const d = after.map((a, i) => a - before[i])
  const proxy = rig.proxies.length > 0 ? d.slice(2).reduce((a, b) => a + b, 0) : null
  return { value, cpu: { upstream: d[0], client: d[1], proxy } }
}

export function firstLine (err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]
}

/** Progress goes to stderr, so stdout carries only the report. */
export function log (line: string): void {
  process.stderr.write(line + '\n')
}
