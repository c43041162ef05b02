import type { CircuitBreakers } from '../cluster/circuit-breakers.js'

type Grant = () => void

/** A request waiting for a connection slot; `cancel()` leaves the queue (timeout, client gone). */
export interface PendingSlot { cancel (): void }

/**
 * The connection circuit breaker with its pending queue (Envoy's connection pool): a request that needs
 * a new upstream connection takes a slot under `maxConnections`; past it the overflow is counted and the
 * request waits, at most `maxPendingRequests` of them, for a slot to be released. Nothing waits without
 * bound: past that, the request is refused (503, overflow), and a waiter is bounded by its route timeout.
 */
export class ConnectionSlots {
  readonly #breakers: CircuitBreakers
  readonly #waiting = new Set<Grant>()

  constructor (breakers: CircuitBreakers) {
    this.#breakers = breakers
  }

  /**
   * A slot now (`grant` called synchronously, returns null), a place in the queue (returns its handle),
   * or `'overflow'` when the queue is full too.
   */
  acquire (grant: Grant): PendingSlot | null | 'overflow' {
    if (this.#waiting.size === 0 && this.#breakers.tryConnection()) {
      grant()
      return null
    }
    if (!this.#breakers.tryPendingRequest()) return 'overflow'
    this.#waiting.add(grant)
    return {
      cancel: () => {
        if (this.#waiting.delete(grant)) this.#breakers.releasePendingRequest()
      }
    }
  }

  /** A connection closed: its slot goes to the longest waiter, if any. */
  release (): void {
    this.#breakers.releaseConnection()
    for (const grant of this.#waiting) {
      if (!this.#breakers.tryConnection()) return
      this.#waiting.delete(grant)
      this.#breakers.releasePendingRequest()
      grant()
    }
  }
}

const slotsOf = new WeakMap<CircuitBreakers, ConnectionSlots>()

/** The one slot queue of a cluster's breakers. */
export function connectionSlots (breakers: CircuitBreakers): ConnectionSlots {
  let slots = slotsOf.get(breakers)
  if (slots === undefined) slotsOf.set(breakers, slots = new ConnectionSlots(breakers))
  return slots
}
