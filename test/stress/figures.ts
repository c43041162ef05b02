/**
 * Figures the stress suites measure. Each suite runs in its own process (node --test), so each writes
 * its rows to test-artifacts/stress/<suite>.json; `stress/table.ts` gathers them into one table.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import type { TestContext } from 'node:test'

export const artifacts = new URL('../../test-artifacts/', import.meta.url)
export const rowsDir = new URL('stress/', artifacts)

export interface Row { suite: string, figure: string, value: string }

/** Collects rows for `suite`; `t.diagnostic` shows each one as it is measured. */
export function figures (suite: string): { add (t: TestContext, figure: string, value: string): void } {
  const rows: Row[] = []
  return {
    add (t, figure, value) {
      rows.push({ suite, figure, value })
      t.diagnostic(`${figure}: ${value}`)
      mkdirSync(rowsDir, { recursive: true })
      writeFileSync(new URL(`${suite}.json`, rowsDir), JSON.stringify(rows, null, 2))
    }
  }
}

export const MiB = 1024 * 1024

export function mib (bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`
}

export function kib (bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`
}

/** Heap and RSS after a full collection (the suites run with --expose-gc). */
export function memoryAfterGc (): { heapUsed: number, rss: number } {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run the stress suites with --expose-gc')
  gc()
  gc()
  const { heapUsed, rss } = process.memoryUsage()
  return { heapUsed, rss }
}
