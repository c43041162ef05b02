// The scale phase: one fresh front, idle tunnels opened in steps (e.g. 100, 1,000, 10,000) and held by a
// second load-client process; at each step the proxy's memory per tunnel, its CPU per 64 B message with the
// load spread over every open tunnel, and the latency of handshakes made while they are all open.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Latencies } from './load-client.ts'
import { NodeChild } from './processes.ts'
import { log, settledSamples, type Rig } from './phases.ts'

/** One step: `tunnels` idle tunnels open through the front. Memory figures are bytes per tunnel. */
export interface ScaleStep {
  tunnels: number
  /** Growth over the baseline (a fresh front, code paths run once), divided by the tunnels; summed over the mode's processes. */
  rssPerTunnel: number | null
  heapPerTunnel: number | null
  /** The same per process (front, sidecar, …), in start order. */
  perProcess: Array<{ name: string, rssPerTunnel: number, heapPerTunnel: number | null }>
  /** Proxy CPU µs per 64 B message, `scaleConcurrency` in flight, spread over every open tunnel. */
  cpuPerMessage: number | null
  /** Handshakes made one at a time while the tunnels are open (connect to the 101, ms). */
  handshake: Latencies
  /** What the mode's processes report (e.g. `sessions`: HTTP/2 connections open at the sidecar). */
  info: Record<string, number>
}

export interface ScaleResult {
  /** Handshake latency with no tunnel open, on the same fresh front. */
  baseline: Latencies
  steps: ScaleStep[]
  /** Set when the open-files limit capped the largest step. */
  capped?: { requested: number, limit: number, fdsPerTunnel: number }
}

const CLIENT = fileURLToPath(new URL('./load-client.ts', import.meta.url))
const SCALE_TIMEOUT_MS = 180_000

/** The soft open-files limit of processes started from here (they inherit ours). */
export function openFilesLimit (): number {
  const limits = readFileSync('/proc/self/limits', 'latin1')
  const soft = /Max open files\s+(\d+|unlimited)/.exec(limits)?.[1]
  return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft)
}

export async function runScale (rig: Rig): Promise<ScaleResult> {
  const w = rig.options.workload
  const fdsPerTunnel = rig.mode.scale?.fdsPerTunnel ?? 2
  const limit = openFilesLimit()
  // Room for what a process holds besides tunnels (listeners, IPC, the HTTP/2 session, libuv).
  const most = Math.floor((limit - 100) / fdsPerTunnel)
  const requested = w.scaleSteps.at(-1) ?? 0
  const steps = [...new Set(w.scaleSteps.map((n) => Math.min(n, most)))]
  const holder = await NodeChild.start('idle-holder', CLIENT, [], { role: 'client' })
  try {
    const probe = async (): Promise<Latencies> => {
      const r = await rig.client.call<{ latencies: Latencies }>('handshakes', {
        port: rig.target.port, count: w.scaleProbes, concurrency: 1, type: rig.options.upgradeType, timeoutMs: SCALE_TIMEOUT_MS, latencies: true
      }, SCALE_TIMEOUT_MS + 5_000)
      return r.latencies
    }
    // Code paths run once, then the latency with nothing open, then the baseline memory.
    await rig.client.call('open', { port: rig.target.port, count: 10, concurrency: 10, type: rig.options.upgradeType, verify: true, timeoutMs: SCALE_TIMEOUT_MS })
    await rig.client.call('closeAll')
    const baseline = await probe()
    const before = await settledSamples(rig)
    const result: ScaleResult = { baseline, steps: [], ...(most < requested ? { capped: { requested, limit, fdsPerTunnel } } : {}) }
    let held = 0
    for (const tunnels of steps) {
      log(`scale ${rig.result.mode}: opening ${tunnels - held} idle tunnels (to ${tunnels})`)
      await holder.call('open', {
        port: rig.target.port, count: tunnels - held, concurrency: 50, type: rig.options.upgradeType, verify: true, timeoutMs: SCALE_TIMEOUT_MS
      }, SCALE_TIMEOUT_MS + 5_000)
      held = tunnels
      const after = await settledSamples(rig)
      const perProcess = rig.proxies.map((p, i) => ({
        name: p.name,
        rssPerTunnel: (after[i].rss - before[i].rss) / tunnels,
        heapPerTunnel: after[i].heapUsed !== null && before[i].heapUsed !== null ? (after[i].heapUsed - before[i].heapUsed) / tunnels : null
      }))
      const sum = (field: 'rssPerTunnel' | 'heapPerTunnel'): number | null =>
        perProcess.some((p) => p[field] === null) ? null : perProcess.reduce((a, p) => a + (p[field] ?? 0), 0)

      const cpu0 = await Promise.all(rig.proxies.map(async (p) => (await p.sample(false)).cpuMicros))
      const echo = await holder.call<{ roundTrips: number }>('echo', {
        payloadBytes: 64, roundTrips: w.scaleRoundTrips, window: 1, concurrency: w.scaleConcurrency, type: rig.options.upgradeType, timeoutMs: SCALE_TIMEOUT_MS
      }, SCALE_TIMEOUT_MS + 5_000)
      const cpu1 = await Promise.all(rig.proxies.map(async (p) => (await p.sample(false)).cpuMicros))
      const cpu = cpu1.reduce((a, c, i) => a + c - cpu0[i], 0)

      const handshake = await probe()
      const info: Record<string, number> = {}
      for (const child of rig.host.nodeChildren()) {
        const facts = await child.call<Record<string, unknown> | null>('info')
        for (const [key, value] of Object.entries(facts ?? {})) if (typeof value === 'number') info[key] = (info[key] ?? 0) + value
      }
      const step: ScaleStep = {
        tunnels,
        rssPerTunnel: sum('rssPerTunnel'),
        heapPerTunnel: sum('heapPerTunnel'),
        perProcess,
        cpuPerMessage: cpu / (2 * echo.roundTrips),
        handshake,
        info
      }
      result.steps.push(step)
      log(`scale ${rig.result.mode}: ${tunnels} tunnels: ${((step.rssPerTunnel ?? 0) / 1024).toFixed(1)} KiB RSS/tunnel, ` +
        `${step.cpuPerMessage?.toFixed(2)} µs/msg, handshake p99 ${handshake.p99.toFixed(2)} ms` +
        (Object.keys(info).length > 0 ? `, ${JSON.stringify(info)}` : ''))
    }
    return result
  } finally {
    await holder.call('closeAll', undefined, 60_000).catch(() => {})
    await holder.stop()
  }
}
