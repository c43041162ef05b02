import type { Host } from './host.js'
import type { ClusterStats } from './cluster-stats.js'
import { probe, type Probe, type ProbeResult, type ProbeSpec } from './health-probe.js'

export interface HealthCheckConfig {
  path: string
  interval: number
  timeout: number
  unhealthyThreshold: number
  healthyThreshold: number
  expectedStatuses: ReadonlyArray<readonly [number, number]>
  tcp: boolean
}

export const healthCheckDefaults: Readonly<HealthCheckConfig> = Object.freeze({
  path: '/healthz', interval: 5000, timeout: 1000, unhealthyThreshold: 3, healthyThreshold: 2, expectedStatuses: [[200, 299] as const], tcp: false
})

export interface HealthCheckEvents {
  /** After every check (tests and the mesh page watch this). */
  onChecked (host: Host, result: ProbeResult): void
  /** The host's active health changed; the cluster applies it and rebuilds its load balancer. */
  onTransition (host: Host, to: 'healthy' | 'unhealthy'): void
}

interface Session {
  host: Host
  timer: NodeJS.Timeout | undefined
  probe: Probe | undefined
  successes: number
  failures: number
  first: Promise<void>
  firstDone: () => void
}

/**
 * Envoy's active health checker for one cluster: each host is checked on its own schedule, the next
 * check `interval` after the previous one ended. A new host is `pending` and its first check decides
 * (one pass → healthy, one failure → unhealthy, as Envoy treats a host added under health checking);
 * after that `unhealthyThreshold` consecutive failures mark it unhealthy and `healthyThreshold`
 * consecutive passes bring it back.
 */
export class HealthChecker {
  readonly #config: HealthCheckConfig
  readonly #spec: ProbeSpec
  readonly #stats: ClusterStats
  readonly #events: HealthCheckEvents
  readonly #sessions = new Map<Host, Session>()
  #closed = false

  constructor (config: HealthCheckConfig, transport: Pick<ProbeSpec, 'protocol' | 'tls'>, stats: ClusterStats, events: HealthCheckEvents) {
    this.#config = config
    this.#spec = { tcp: config.tcp, path: config.path, timeout: config.timeout, expectedStatuses: config.expectedStatuses, ...transport }
    this.#stats = stats
    this.#events = events
  }

  /** Starts checking `host` now. */
  add (host: Host): void {
    if (this.#closed || this.#sessions.has(host)) return
    let firstDone!: () => void
    const first = new Promise<void>((resolve) => { firstDone = resolve })
    const session: Session = { host, timer: undefined, probe: undefined, successes: 0, failures: 0, first, firstDone }
    this.#sessions.set(host, session)
    this.#check(session)
  }

  /** Stops checking `host` and aborts a check in flight. */
  remove (host: Host): void {
    const session = this.#sessions.get(host)
    if (session === undefined) return
    this.#sessions.delete(host)
    this.#stop(session)
  }

  /** Settles when every host checked now has had its first check (each bounded by `timeout`). */
  async firstRound (): Promise<void> {
    await Promise.all([...this.#sessions.values()].map(s => s.first))
  }

  close (): void {
    this.#closed = true
    for (const session of this.#sessions.values()) this.#stop(session)
    this.#sessions.clear()
  }

  #stop (session: Session): void {
    clearTimeout(session.timer)
    session.timer = undefined
    session.probe?.abort()
    session.probe = undefined
    session.firstDone()
  }

  #check (session: Session): void {
    session.timer = undefined
    this.#stats.inc('health_check.attempt')
    const p = probe(session.host.endpoint, this.#spec)
    session.probe = p
    void p.result.then((result) => {
      // Removed or closed meanwhile: the abort settled it; nothing to record.
      if (session.probe !== p || this.#sessions.get(session.host) !== session) return
      session.probe = undefined
      this.#record(session, result)
      session.firstDone()
      if (this.#sessions.get(session.host) !== session) return
      session.timer = setTimeout(() => this.#check(session), this.#config.interval)
      session.timer.unref()
    })
  }

  #record (session: Session, result: ProbeResult): void {
    const { host } = session
    if (result.ok) {
      this.#stats.inc('health_check.success')
      session.failures = 0
      session.successes++
    } else {
      this.#stats.inc('health_check.failure')
      if (result.network) this.#stats.inc('health_check.network_failure')
      session.successes = 0
      session.failures++
    }
    const state = host.activeHealth
    if (state === 'pending') {
      this.#events.onTransition(host, result.ok ? 'healthy' : 'unhealthy')
    } else if (state === 'healthy' && session.failures >= this.#config.unhealthyThreshold) {
      this.#events.onTransition(host, 'unhealthy')
    } else if (state === 'unhealthy' && session.successes >= this.#config.healthyThreshold) {
      this.#events.onTransition(host, 'healthy')
    }
    this.#events.onChecked(host, result)
  }
}
