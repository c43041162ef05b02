import type { Filter } from '@switchyard/core'

/** What one node's meter has counted since it started. */
export interface Meter {
  /** Tunnelled bytes from the downstream (toward the app) and from the upstream (toward the client). */
  bytesUp: number
  bytesDown: number
  /** Upgrade handshakes answered with something other than 101, by status (401, 403, 503…). */
  refused: Record<string, number>
}

/**
 * A filter that counts what the live view shows: tunnelled bytes, live as they pass, and refused
 * upgrades. Put it first in the chain: a local reply (the authorization filter's 401) then comes back
 * through its response callbacks (response callbacks run in reverse, from the replying filter).
 * Plain requests are not counted.
 */
export function createMeterFilter (onChange: () => void): { filter: Filter, meter: Meter } {
  const meter: Meter = { bytesUp: 0, bytesDown: 0, refused: {} }
  const filter: Filter = {
    name: 'mesh-meter',
    onResponseHeaders (ctx, status) {
      if (ctx.upgradeType === null) return
      // A 101 opens a tunnel: the node's active count moved.
      if (status !== 101) meter.refused[status] = (meter.refused[status] ?? 0) + 1
      onChange()
    },
    onRequestData (ctx, chunk) {
      if (ctx.upgradeType === null) return
      meter.bytesUp += chunk.length
      onChange()
    },
    onResponseData (ctx, chunk) {
      if (ctx.upgradeType === null) return
      meter.bytesDown += chunk.length
      onChange()
    },
    onClose () { onChange() }
  }
  return { filter, meter }
}
