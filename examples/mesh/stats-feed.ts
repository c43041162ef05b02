import { EventEmitter } from 'node:events'
import type { Counters } from './counters.ts'
import { sumCounters } from './counters.ts'

/** What the page receives: the mesh's counters summed over every node. */
export interface MeshSnapshot {
  counters: Counters
}

/** Where the front's page reads the mesh's totals: `snapshot()` now, `'change'` when it moves. */
export interface TotalsSource {
  snapshot (): MeshSnapshot
  on (event: 'change', listener: () => void): unknown
  off (event: 'change', listener: () => void): unknown
}

/** Coalesces a burst of changes (every tunnelled chunk is one) into at most one call per `ms`. */
export function throttle (fn: () => void, ms = 100): () => void {
  let timer: NodeJS.Timeout | undefined
  return () => {
    if (timer !== undefined) return
    timer = setTimeout(() => { timer = undefined; fn() }, ms)
    timer.unref()
  }
}

/**
 * The mesh's totals: each node (a front process, the sidecar) reports its own counters under its
 * name; the snapshot is their sum. In one process the nodes report directly; with `--workers`, the
 * workers report to the primary over IPC (see workers.ts).
 */
export class MeshTotals extends EventEmitter implements TotalsSource {
  readonly #nodes = new Map<string, Counters>()

  report (node: string, counters: Counters): void {
    this.#nodes.set(node, counters)
    this.emit('change')
  }

  /** A node that is gone (a front worker that exited) no longer counts. */
  forget (node: string): void {
    if (this.#nodes.delete(node)) this.emit('change')
  }

  snapshot (): MeshSnapshot {
    return { counters: sumCounters(this.#nodes.values()) }
  }
}

/** A copy of totals kept elsewhere (a worker's view of the primary's `MeshTotals`). */
export class TotalsMirror extends EventEmitter implements TotalsSource {
  #last: MeshSnapshot = { counters: {} }

  update (snapshot: MeshSnapshot): void {
    this.#last = snapshot
    this.emit('change')
  }

  snapshot (): MeshSnapshot {
    return this.#last
  }
}
