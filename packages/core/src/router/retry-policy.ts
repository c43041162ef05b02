import type { UpstreamOptions } from '../route-options.js'

/** What went wrong with one attempt, in Envoy's `retry_on` vocabulary. */
export type RetryCondition = 'connect-failure' | 'reset' | '5xx'

/** Envoy's `retry_on` when a route sets `retries` without naming conditions. */
const defaultRetryOn: readonly RetryCondition[] = ['connect-failure', 'reset', '5xx']

/** Envoy's default retry back-off: 25 ms base interval, at most 10 × base (`retry_back_off`). */
const BACK_OFF_BASE = 25
const BACK_OFF_MAX = 250

/** Envoy's default route timeout (ms): a route without `upstream.timeout` waits this long for the answer. */
export const DEFAULT_ROUTE_TIMEOUT = 15_000

/**
 * The per-attempt policy of a route (Envoy's `RetryPolicy` with its back-off): whether a failed attempt is
 * retried, and after how long. One instance per request; `retried()` counts the attempts made.
 */
export class RetryPolicy {
  readonly #numRetries: number
  readonly #retryOn: readonly RetryCondition[]
  #retries = 0
  #disabled = false

  constructor (upstream: UpstreamOptions | undefined) {
    this.#numRetries = upstream?.retries?.numRetries ?? 0
    this.#retryOn = upstream?.retries?.retryOn ?? defaultRetryOn
  }

  /** Retries made so far. */
  get retries (): number {
    return this.#retries
  }

  /** True when the route retries on `condition` and has retries left. */
  allows (condition: RetryCondition): boolean {
    return !this.#disabled && this.#retries < this.#numRetries && this.#retryOn.includes(condition)
  }

  /** No more retries for this request (its body could not be kept for a resend). */
  disable (): void {
    this.#disabled = true
  }

  /** True when the route would retry at all. */
  get configured (): boolean {
    return this.#numRetries > 0
  }

  /** Counts a retry and returns its back-off in ms: fully jittered, exponential, capped (Envoy's `JitteredExponentialBackOffStrategy`). */
  next (random: () => number = Math.random): number {
    this.#retries++
    return Math.floor(random() * Math.min(BACK_OFF_BASE * 2 ** (this.#retries - 1), BACK_OFF_MAX))
  }
}

/** The route timeout in ms (`0` = none): the route's, or Envoy's default. */
export function routeTimeout (upstream: UpstreamOptions | undefined): number {
  return upstream?.timeout ?? DEFAULT_ROUTE_TIMEOUT
}
