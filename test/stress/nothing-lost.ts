/**
 * The nothing-lost check, shared by one suite file per mode (each file is its own process, so the
 * process's peak RSS is that mode's): a client process sends random bytes in random chunk sizes
 * through the mode to an echo upstream process, reading the echo with random pauses, and compares
 * the sha256 of what it sent with the sha256 of what came back.
 */
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { startFixture } from '../helpers/child.ts'
import { startMode, type Mode } from '../helpers/tunnel-modes.ts'
import { gaugesAtZero } from '../helpers/leak-check.ts'
import { figures, mib, MiB } from './figures.ts'

export const BYTES = Number(process.env.STRESS_BYTES ?? 1024 * MiB)

export async function nothingLost (t: TestContext, mode: Mode, suite: string): Promise<void> {
  const rows = figures(suite)
  const upstream = await startFixture(t, 'upgrade-echo-server.ts')
  const { port, apps } = await startMode(t, mode, upstream.ready.port)
  const rssBefore = process.memoryUsage().rss
  const started = performance.now()
  const client = await startFixture(t, 'bulk-echo-client.ts', [String(port), '/bulk', String(BYTES), String(Date.now() & 0xffff)])
  const seconds = (performance.now() - started) / 1000
  const result = client.ready as unknown as { sent: number, received: number, sentSha256: string, receivedSha256: string }
  assert.equal(result.sent, BYTES)
  assert.equal(result.received, BYTES, 'bytes lost or added on the way')
  assert.equal(result.receivedSha256, result.sentSha256, 'the echo differs from what was sent')
  await gaugesAtZero(apps)
  const peak = process.resourceUsage().maxRSS * 1024
  rows.add(t, 'echoed byte-exact (sha256 both ways)', `${mib(BYTES)} each way in ${seconds.toFixed(1)} s (${(BYTES / MiB / seconds).toFixed(0)} MiB/s)`)
  rows.add(t, `proxy process peak RSS${apps.length > 1 ? ' (front and sidecar in one process)' : ''}`, `${mib(peak)} (${mib(rssBefore)} before the transfer)`)
}
