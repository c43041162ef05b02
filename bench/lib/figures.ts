import type { EchoResult, ModeResult } from './phases.ts'

/** The per-mode figures the report and the targets read from a run's results (null where not measured). */
const MiB = 1024 * 1024

/** Proxy CPU µs per message (one frame one way) in an echo phase. */
export function perMessage (e: EchoResult | undefined): number | null {
  return e?.cpu.proxy != null ? e.cpu.proxy / e.messages : null
}

export function roundTripsPerSecond (e: EchoResult | undefined): number | null {
  return e !== undefined ? e.roundTrips / (e.wallMs / 1000) : null
}

export function mibPerSecond (r: ModeResult | undefined): number | null {
  return r?.stream !== undefined ? r.stream.bytes / MiB / (r.stream.wallMs / 1000) : null
}

/** Proxy CPU ms per GiB streamed. */
export function cpuPerGiB (r: ModeResult | undefined): number | null {
  return r?.stream?.cpu.proxy != null ? r.stream.cpu.proxy / 1000 / (r.stream.bytes / (1024 * MiB)) : null
}

export function handshakesPerSecond (r: ModeResult | undefined): number | null {
  return r?.handshakes !== undefined ? r.handshakes.count / (r.handshakes.wallMs / 1000) : null
}

/** Proxy CPU µs per handshake (all the mode's processes). */
export function cpuPerHandshake (r: ModeResult | undefined): number | null {
  return r?.handshakes?.cpu.proxy != null ? r.handshakes.cpu.proxy / r.handshakes.count : null
}

/** Memory growth per idle tunnel, KiB (summed over the mode's processes). */
export function kibPerTunnel (r: ModeResult | undefined, field: 'rss' | 'heapUsed'): number | null {
  const m = r?.memory
  const v = m?.[field]
  return m !== undefined && v != null ? v / 1024 / m.tunnels : null
}

export function ratioValue (a: number | null, b: number | null): number | null {
  return a !== null && b !== null && b > 0 ? a / b : null
}

export function ratioText (v: number | null): string {
  return v === null ? '—' : `${v.toFixed(2)}x`
}

/** A figure for a table cell: thousands separated, 3 significant digits below 1,000. */
export function num (v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—'
  const abs = Math.abs(v)
  if (abs >= 1000) return Math.round(v).toLocaleString('en')
  if (abs >= 100) return v.toFixed(0)
  if (abs >= 10) return v.toFixed(1)
  return v.toFixed(2)
}
