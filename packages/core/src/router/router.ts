import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { AppState } from '../app-state.js'
import type { Cluster } from '../cluster/cluster.js'
import type { Closable, Host } from '../cluster/host.js'
import type { HashFunction, HashInput } from '../cluster/hash-policy.js'
import type { Headers } from '../headers.js'
import type { UpstreamOptions } from '../route-options.js'
import { chooseCluster } from '../route-action.js'
import { RetryPolicy, type RetryCondition } from './retry-policy.js'
import { connectionSlots, type PendingSlot } from './connection-slots.js'
import {
  SwyNoHealthyUpstreamError, SwyUpstreamConnectError, SwyUpstreamOverflowError, SwyUpstreamTimeoutError
} from '../errors.js'

/** Why one attempt got no usable answer: no connection, broken before an answer, or an unusable answer (never retried). */
export type AttemptFailureKind = 'connect-failure' | 'reset' | 'protocol'

/** How an attempt reports back to the router: exactly one of `answered` (taken) or `failed`. */
export interface AttemptEvents {
  /**
   * The upstream answered with `status` (a 101, or the 200 of an HTTP/2 CONNECT, for an accepted upgrade).
   * True: this is the answer, relay it. False: the router retries instead; drop this answer and its connection.
   */
  answered (status: number): boolean
  /** No usable answer. `error` is logged and kept as the cause. */
  failed (kind: AttemptFailureKind, error: Error): void
}

/** One attempt in flight; `abort()` gives it up (its connection is destroyed, no event follows). */
export interface Attempt {
  abort (): void
}

export type RouterFailureKind = 'no-healthy-upstream' | 'overflow' | 'timeout' | 'connect-failure' | 'reset' | 'protocol'

/** The router gave up: what Envoy would answer locally. */
export interface RouterFailure {
  kind: RouterFailureKind
  /** A coded error carrying the status (`statusCode`). */
  error: Error & { statusCode?: number, code?: string }
  status: number
  headers: Record<string, string>
  /** Envoy's local reply body for this failure. */
  body: string
  /** Envoy's access log response flag: UH, UO, UT, UF, UC, UPE, DPE. */
  responseFlag: string
}

/** What the stream that owns a router does for it. */
export interface RouterOwner {
  /** Sends the request to `host` (the `attempt`-th try, from 0). */
  openAttempt (cluster: Cluster, host: Host, attempt: number, events: AttemptEvents): Attempt
  /** The router gave up before an answer was taken. */
  routerFailed (failure: RouterFailure): void
  /** Ends the stream at once: its endpoint is ejected, unhealthy or drained away (`closeConnectionsOnHostHealthFailure`, `drainTimeout`). */
  abort (error: Error): void
}

export interface RouterInit {
  app: AppState
  upstream: UpstreamOptions
  /** ms until the answer (the route timeout); 0 = none. */
  timeout: number
  /**
   * Every attempt opens a fresh upstream connection held for the stream's life (HTTP/1.1 upgrades, legacy),
   * so it takes a connection slot; a function decides per chosen cluster.
   */
  connectionPerAttempt: boolean | ((cluster: Cluster) => boolean)
  log: FastifyBaseLogger
  owner: RouterOwner
  /** The route's compiled `hashPolicy` (ring hash, maglev, sticky cookies). */
  hashOf?: HashFunction | undefined
  /** What the hash policy reads; called once per request, only when there is a policy. */
  hashInput?: () => HashInput
}

type State = 'idle' | 'routing' | 'backoff' | 'answered' | 'failed' | 'released'

/**
 * Envoy's router filter for one stream, shared by upgrades, plain proxied requests and the legacy mode:
 * the cluster (route action), the circuit breakers, the endpoint (the cluster's load balancer), the
 * attempts with their retries and back-off, the route timeout, outlier detection's view of each answer,
 * and the cluster stats. The owner opens each attempt on its own transport and relays the answer.
 */
export class Router {
  readonly #app: AppState
  readonly #upstream: UpstreamOptions
  readonly #owner: RouterOwner
  readonly #log: FastifyBaseLogger
  readonly #timeoutMs: number
  readonly #perAttemptOf: boolean | ((cluster: Cluster) => boolean)
  #perAttempt = false
  readonly #policy: RetryPolicy
  #state: State = 'idle'
  #cluster: Cluster | undefined
  #host: Host | undefined
  #tried: Host[] = []
  #attempt: Attempt | undefined
  #attempts = 0
  #timer: NodeJS.Timeout | undefined
  #backoff: NodeJS.Timeout | undefined
  #pending: PendingSlot | undefined
  /** Held breaker resources, released once. */
  #holdsRequest = false
  #holdsRetry = false
  #holdsConnection = false
  #hostCounted = false
  #hostConnection = false
  #hash: number | undefined
  #setCookie: string | undefined
  readonly #hashOf: HashFunction | undefined
  readonly #hashInput: (() => HashInput) | undefined
  /** What the endpoint's stream set holds for this request, so the cluster can end it. */
  readonly #closable: Closable

  constructor (init: RouterInit) {
    this.#app = init.app
    this.#upstream = init.upstream
    this.#owner = init.owner
    this.#log = init.log
    this.#timeoutMs = init.timeout
    this.#perAttemptOf = init.connectionPerAttempt
    this.#policy = new RetryPolicy(init.upstream)
    this.#hashOf = init.hashOf
    this.#hashInput = init.hashInput
    const owner = init.owner
    this.#closable = { destroy: (error) => owner.abort(error ?? new Error('the upstream endpoint let go of this stream')) }
  }

  /**
   * Adds what the router puts on the response: the sticky cookie a hash policy generated (Envoy adds it
   * to the upstream's headers, before the response filters).
   */
  decorateResponse (headers: Headers): void {
    const cookie = this.#setCookie
    if (cookie === undefined) return
    const prev = headers['set-cookie']
    headers['set-cookie'] = prev === undefined ? cookie : Array.isArray(prev) ? [...prev, cookie] : [prev, cookie]
  }

  /** The cluster chosen (after `start`). */
  get cluster (): Cluster | undefined { return this.#cluster }
  /** The endpoint of the attempt in flight or of the answer taken. */
  get host (): Host | undefined { return this.#host }
  /** Retries made. */
  get retries (): number { return this.#policy.retries }
  /** True when the route retries at all. */
  get retriesConfigured (): boolean { return this.#policy.configured }

  /** The request can no longer be sent again (its body outgrew the retry buffer): no attempt is retried. */
  disableRetries (): void {
    this.#policy.disable()
  }

  /** Chooses the cluster and sends the first attempt. */
  start (): void {
    if (this.#state !== 'idle') return
    this.#state = 'routing'
    const app = this.#app
    const name = chooseCluster(this.#upstream, app.runtime)
    const cluster = name === undefined ? undefined : app.clusters.get(name)
    if (cluster === undefined) {
      this.#fail('no-healthy-upstream', new SwyNoHealthyUpstreamError(name ?? '(none)'))
      return
    }
    this.#cluster = cluster
    this.#perAttempt = typeof this.#perAttemptOf === 'function' ? this.#perAttemptOf(cluster) : this.#perAttemptOf
    app.stats.cluster(cluster.name, 'upstream_rq_total')
    if (!cluster.breakers.tryRequest()) {
      this.#fail('overflow', new SwyUpstreamOverflowError(cluster.name, 'maxRequests'))
      return
    }
    this.#holdsRequest = true
    app.stats.cluster(cluster.name, 'upstream_rq_active')
    if (this.#hashOf !== undefined && this.#hashInput !== undefined) {
      const { hash, setCookie } = this.#hashOf(this.#hashInput())
      this.#hash = hash
      this.#setCookie = setCookie
    }
    if (this.#timeoutMs > 0) this.#timer = setTimeout(this.#onTimeout, this.#timeoutMs)
    this.#next()
  }

  /** Picks an endpoint and opens an attempt on it (after a connection slot, when each attempt needs one). */
  #next (): void {
    const cluster = this.#cluster!
    const host = cluster.chooseHost({ hash: this.#hash, previous: this.#tried })
    if (host === undefined) {
      this.#app.stats.cluster(cluster.name, 'upstream_cx_none_healthy')
      this.#fail('no-healthy-upstream', new SwyNoHealthyUpstreamError(cluster.name))
      return
    }
    if (!this.#perAttempt) {
      this.#open(cluster, host)
      return
    }
    const slot = connectionSlots(cluster.breakers).acquire(() => {
      this.#pending = undefined
      if (this.#state !== 'routing') {
        connectionSlots(cluster.breakers).release()
        return
      }
      this.#holdsConnection = true
      this.#open(cluster, host)
    })
    if (slot === 'overflow') {
      this.#fail('overflow', new SwyUpstreamOverflowError(cluster.name, 'maxPendingRequests'))
      return
    }
    if (slot !== null) this.#pending = slot
  }

  #open (cluster: Cluster, host: Host): void {
    const app = this.#app
    this.#host = host
    this.#tried.push(host)
    host.activeRequests++
    this.#hostCounted = true
    if (this.#perAttempt) {
      host.activeConnections++
      this.#hostConnection = true
      app.stats.cluster(cluster.name, 'upstream_cx_total')
      app.stats.cluster(cluster.name, 'upstream_cx_active')
    }
    let settled = false
    const attemptNo = this.#attempts++
    const events: AttemptEvents = {
      answered: (status) => {
        if (settled || this.#state !== 'routing') return false
        settled = true
        return this.#onAnswer(cluster, host, status)
      },
      failed: (kind, error) => {
        if (settled || this.#state !== 'routing') return
        settled = true
        this.#onAttemptFailed(cluster, host, kind, error)
      }
    }
    this.#attempt = this.#owner.openAttempt(cluster, host, attemptNo, events)
  }

  #onAnswer (cluster: Cluster, host: Host, status: number): boolean {
    const stats = this.#app.stats
    if (status >= 500) cluster.recordOutcome(host, status >= 502 && status <= 504 ? 'gateway-failure' : '5xx')
    else cluster.recordOutcome(host, 'success')
    if (status >= 500 && this.#retry('5xx')) return false
    this.#attempt = undefined
    this.#state = 'answered'
    host.streams.add(this.#closable)
    this.#clearTimers()
    if (this.#policy.retries > 0) stats.cluster(cluster.name, 'upstream_rq_retry_success')
    this.#releaseRetry()
    return true
  }

  #onAttemptFailed (cluster: Cluster, host: Host, kind: AttemptFailureKind, error: Error): void {
    this.#attempt = undefined
    if (kind === 'connect-failure') this.#app.stats.cluster(cluster.name, 'upstream_cx_connect_fail')
    if (kind !== 'protocol') cluster.recordOutcome(host, 'local-origin-failure')
    if (kind !== 'protocol' && this.#retry(kind)) return
    if (kind === 'protocol') {
      this.#fail('protocol', error)
      return
    }
    const err = new SwyUpstreamConnectError(cluster.name, host.endpoint.authority, error.message)
    err.cause = error
    this.#fail(kind, err)
  }

  /** A retry when the policy and the retry breaker allow it: the attempt's endpoint and connection are let go first. */
  #retry (condition: RetryCondition): boolean {
    const cluster = this.#cluster!
    if (!this.#policy.allows(condition)) return false
    if (!this.#holdsRetry) {
      if (!cluster.breakers.tryRetry()) return false
      this.#holdsRetry = true
    }
    this.#releaseAttempt()
    this.#app.stats.cluster(cluster.name, 'upstream_rq_retry')
    const delay = this.#policy.next()
    this.#state = 'backoff'
    this.#backoff = setTimeout(() => {
      this.#backoff = undefined
      if (this.#state !== 'backoff') return
      this.#state = 'routing'
      this.#next()
    }, delay)
    return true
  }

  #onTimeout = (): void => {
    this.#timer = undefined
    if (this.#state !== 'routing' && this.#state !== 'backoff') return
    const cluster = this.#cluster!
    this.#app.stats.cluster(cluster.name, 'upstream_rq_timeout')
    this.#abortAttempt()
    this.#fail('timeout', new SwyUpstreamTimeoutError(cluster.name, this.#timeoutMs))
  }

  #fail (kind: RouterFailureKind, error: Error & { statusCode?: number, code?: string }): void {
    if (this.#state === 'failed' || this.#state === 'released') return
    this.#state = 'failed'
    this.#clearTimers()
    this.#abortAttempt()
    this.#releaseAll()
    this.#owner.routerFailed(failureOf(kind, error))
  }

  /**
   * The stream is over (its tunnel closed, its response ended, or it was reset): an attempt in flight is
   * aborted and every breaker, endpoint and stat the request held is released. Idempotent.
   */
  release (): void {
    if (this.#state === 'released') return
    const wasRouting = this.#state === 'routing' || this.#state === 'backoff' || this.#state === 'idle'
    this.#state = 'released'
    this.#clearTimers()
    if (wasRouting) this.#abortAttempt()
    this.#releaseAll()
  }

  #abortAttempt (): void {
    this.#pending?.cancel()
    this.#pending = undefined
    const attempt = this.#attempt
    this.#attempt = undefined
    attempt?.abort()
  }

  #clearTimers (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#backoff !== undefined) clearTimeout(this.#backoff)
    this.#timer = undefined
    this.#backoff = undefined
  }

  /** Lets go of the endpoint and connection of a failed attempt (before a retry or the end). */
  #releaseAttempt (): void {
    const cluster = this.#cluster
    if (cluster === undefined) return
    const host = this.#host
    if (this.#hostCounted) {
      this.#hostCounted = false
      host!.activeRequests--
      host!.streams.delete(this.#closable)
    }
    if (this.#hostConnection) {
      this.#hostConnection = false
      host!.activeConnections--
    }
    if (this.#perAttempt && host !== undefined && this.#holdsConnection) {
      this.#holdsConnection = false
      this.#app.stats.cluster(cluster.name, 'upstream_cx_active', -1)
      connectionSlots(cluster.breakers).release()
    }
  }

  #releaseRetry (): void {
    if (!this.#holdsRetry) return
    this.#holdsRetry = false
    this.#cluster!.breakers.releaseRetry()
  }

  #releaseAll (): void {
    const cluster = this.#cluster
    if (cluster === undefined) return
    this.#releaseAttempt()
    this.#releaseRetry()
    if (this.#holdsRequest) {
      this.#holdsRequest = false
      cluster.breakers.releaseRequest()
      this.#app.stats.cluster(cluster.name, 'upstream_rq_active', -1)
    }
  }
}

/** What a hash policy reads from a Fastify request (HTTP/1.1 or HTTP/2 alike). */
export function hashInputOf (request: FastifyRequest): HashInput {
  const socket = request.raw.socket as { remoteAddress?: string, remotePort?: number, localAddress?: string, localPort?: number } | undefined
  return {
    headers: request.headers,
    url: request.raw.url ?? '/',
    remoteAddress: socket?.remoteAddress,
    remotePort: socket?.remotePort,
    localAddress: socket?.localAddress,
    localPort: socket?.localPort
  }
}

/** Envoy's local replies for router failures (status, body, response flag). */
function failureOf (kind: RouterFailureKind, error: Error & { statusCode?: number, code?: string }): RouterFailure {
  switch (kind) {
    case 'no-healthy-upstream':
      return { kind, error, status: 503, headers: {}, body: 'no healthy upstream', responseFlag: 'UH' }
    case 'overflow':
      return {
        kind,
        error,
        status: 503,
        headers: { 'x-envoy-overloaded': 'true' },
        body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow',
        responseFlag: 'UO'
      }
    case 'timeout':
      return { kind, error, status: 504, headers: {}, body: 'upstream request timeout', responseFlag: 'UT' }
    case 'connect-failure':
      return { kind, error, status: 503, headers: {}, body: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure', responseFlag: 'UF' }
    case 'reset':
      return { kind, error, status: 503, headers: {}, body: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination', responseFlag: 'UC' }
    case 'protocol': {
      // A 4xx is the request's fault (a header the hop cannot carry): Envoy's downstream protocol error.
      const status = error.statusCode ?? 502
      return { kind, error, status, headers: {}, body: '', responseFlag: status < 500 ? 'DPE' : 'UPE' }
    }
  }
}

export type { Headers }
