import type { Endpoint, ProxyMode } from '../modes/mode.ts'
import type { BenchOptions } from './options.ts'
import type { MeasuredProcess, NodeChild } from './processes.ts'
import { ProcessModeHost } from './mode-host.ts'

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
  phaseErrors: Partial<Record<'memory' | RepeatedPhase, string>>
  memory?: MemoryResult
  handshakes?: HandshakeResult
  small?: EchoResult
  large?: EchoResult
  stream?: StreamResult
}

/** A mode that started: its proxies, the endpoint the client dials, and its results so far. */
interface Rig {
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
interface Phase<T> {
  warmup (rig: Rig): Promise<unknown>
  measure (rig: Rig): Promise<T>
  /** Lower is better; the median by this is reported. */
  key (run: T): number
  /** One progress line about a run. */
  describe (run: T): string
}

type RepeatedPhase = 'handshakes' | 'small' | 'large' | 'stream'

/**
 * Starts every mode's proxies up front, measures memory on each fresh proxy, then runs each phase
 * with the modes interleaved (mode order rotated per repeat), so a change in background load
 * over the run hits every mode alike and the ratios stay fair. Stops everything at the end.
 */
export async function runModes (modes: ProxyMode[], client: NodeChild, upstream: NodeChild, options: BenchOptions): Promise<ModeResult[]> {
  const results: ModeResult[] = []
  const rigs: Rig[] = []
  const hosts: ProcessModeHost[] = []
  try {
    for (const mode of modes) {
      const result: ModeResult = { mode: mode.name, description: mode.description, phaseErrors: {} }
      results.push(result)
      const reason = await mode.unavailable?.() ?? null
      if (reason !== null) {
        result.skipped = reason
        continue
      }
      const host = new ProcessModeHost()
      hosts.push(host)
      try {
        const target = await mode.start(host, { host: '127.0.0.1', port: upstream.port })
        rigs.push({ mode, host, client, upstream, proxies: host.processes, target, options, result })
      } catch (err) {
        result.error = firstLine(err)
        log(`${mode.name}: did not start: ${result.error}`)
      }
    }

    // Memory first, on fresh proxies (restarted for each repeat): buffers freed by the busy phases,
    // or by an earlier repeat, would be reused by the idle tunnels and hide their growth.
    for (const rig of rigs) {
      const runs: MemoryResult[] = []
      for (let r = 0; r < options.workload.memoryRepeats; r++) {
        log(`memory: ${rig.result.mode}, run ${r + 1} of ${options.workload.memoryRepeats}`)
        await guarded(rig, 'memory', async () => {
          if (r > 0) await restart(rig)
          runs.push(await measureMemory(rig))
        })
      }
      if (runs.length > 0) {
        const median = (field: 'rss' | 'heapUsed'): number | null => {
          const values = runs.map((m) => m[field]).filter((v): v is number => v !== null).sort((a, b) => a - b)
          return values.length > 0 ? values[Math.floor((values.length - 1) / 2)] : null
        }
        rig.result.memory = { tunnels: runs[0].tunnels, rss: median('rss'), heapUsed: median('heapUsed') }
      }
    }

    for (const name of Object.keys(PHASES) as RepeatedPhase[]) {
      const phase = PHASES[name] as Phase<unknown>
      const runs = new Map<Rig, unknown[]>(rigs.map((rig) => [rig, []]))
      log(`${name}: warm-up`)
      for (const rig of rigs) await guarded(rig, name, () => phase.warmup(rig))
      for (let r = 0; r < options.workload.repeats; r++) {
        log(`${name}: run ${r + 1} of ${options.workload.repeats}`)
        for (let i = 0; i < rigs.length; i++) {
          const rig = rigs[(i + r) % rigs.length]
          if (rig.result.phaseErrors[name] !== undefined) continue
          await guarded(rig, name, async () => {
            const run = await phase.measure(rig)
            runs.get(rig)?.push(run)
            log(`  ${name} ${rig.result.mode}: ${phase.describe(run)}`)
          })
        }
      }
      for (const [rig, list] of runs) {
        if (list.length === 0 || rig.result.phaseErrors[name] !== undefined) continue
        list.sort((a, b) => phase.key(a) - phase.key(b))
        ;(rig.result as unknown as Record<string, unknown>)[name] = list[Math.floor((list.length - 1) / 2)]
      }
    }
    return results
  } finally {
    for (const host of hosts) await host.stopAll()
  }
}

/** Runs one step of a phase for one mode; a failure marks that mode's phase failed and the run goes on. */
async function guarded (rig: Rig, phase: 'memory' | RepeatedPhase, step: () => Promise<unknown>): Promise<void> {
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
async function restart (rig: Rig): Promise<void> {
  await rig.host.stopAll()
  rig.target = await rig.mode.start(rig.host, { host: '127.0.0.1', port: rig.upstream.port })
}

async function measureMemory (rig: Rig): Promise<MemoryResult> {
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
async function settledSamples (rig: Rig): Promise<Array<{ rss: number, heapUsed: number | null }>> {
  await Promise.all(rig.proxies.map((p) => p.sample(true)))
  await new Promise((resolve) => setTimeout(resolve, 200))
  return Promise.all(rig.proxies.map((p) => p.sample(true)))
}

const PHASES: { [K in RepeatedPhase]: Phase<NonNullable<ModeResult[K]>> } = {
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

function handshakes (rig: Rig, count: number): Promise<{ count: number, wallMs: number }> {
  return rig.client.call('handshakes', {
    port: rig.target.port, count, concurrency: rig.options.workload.handshakeConcurrency, type: rig.options.upgradeType, timeoutMs: rig.options.phaseTimeoutMs
  }, rig.options.phaseTimeoutMs + 5_000)
}

function stream (rig: Rig, bytes: number): Promise<{ bytes: number, wallMs: number }> {
  return rig.client.call('stream', {
    port: rig.target.port, bytes, type: rig.options.upgradeType, timeoutMs: rig.options.phaseTimeoutMs
  }, rig.options.phaseTimeoutMs + 5_000)
}

function open (rig: Rig, count: number, verify: boolean): Promise<unknown> {
  return rig.client.call('open', {
    port: rig.target.port, count, concurrency: 50, type: rig.options.upgradeType, verify, timeoutMs: rig.options.phaseTimeoutMs
  }, rig.options.phaseTimeoutMs + 5_000)
}

/** Runs `fn` between two CPU samples of every process (upstream, client, the mode's proxies). */
async function measured<T> (rig: Rig, fn: () => Promise<T>): Promise<{ value: T, cpu: Cost }> {
  const sampleAll = (): Promise<number[]> => Promise.all([rig.upstream, rig.client, ...rig.proxies].map(async (p) => (await p.sample(false)).cpuMicros))
  const before = await sampleAll()
  const value = await fn()
  const after = await sampleAll()
  const d = after.map((a, i) => a - before[i])
  const proxy = rig.proxies.length > 0 ? d.slice(2).reduce((a, b) => a + b, 0) : null
  return { value, cpu: { upstream: d[0], client: d[1], proxy } }
}

function firstLine (err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]
}

/** Progress goes to stderr, so stdout carries only the report. */
export function log (line: string): void {
  process.stderr.write(line + '\n')
}
