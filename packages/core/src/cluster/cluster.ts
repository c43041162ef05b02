import { EventEmitter } from 'node:events'
import type { ClusterOptions } from '../plugin-options.js'
import { SwyHashPolicyMissingError, SwyUpstreamHostRemovedError, SwyUpstreamHostUnhealthyError } from '../errors.js'
import { endpointKey } from './endpoint.js'
import { Host, type HostHealth } from './host.js'
import { ClusterStats, type ClusterStatsSink } from './cluster-stats.js'
import { CircuitBreakers } from './circuit-breakers.js'
import { parseEntries, resolveClusterOptions, type ClusterConfig, type ParsedEntry } from './cluster-options.js'
import type { LbPolicy, LoadBalancer } from './load-balancer.js'
import { RoundRobinLoadBalancer } from './round-robin.js'
import { LeastRequestLoadBalancer } from './least-request.js'
import { RandomLoadBalancer } from './random.js'
import { RingHashLoadBalancer } from './ring-hash.js'
import { MaglevLoadBalancer } from './maglev.js'
import { HealthChecker } from './health-checker.js'
import { OutlierDetector, type Outcome } from './outlier-detector.js'
import { DnsResolver, type DnsTarget } from './dns-resolver.js'

export interface ClusterLog {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
}

export interface ClusterDeps {
  stats: ClusterStatsSink
  log: ClusterLog
}

export interface ChooseContext {
  /** The route hash policy's value (ring hash and maglev); other policies ignore it. */
  hash?: bigint | number
  /** Hosts already tried by this request: a retry avoids them when it can. */
  previous?: readonly Host[]
}

export interface EndpointStatus {
  address: string
  weight: number
  health: HostHealth
}

// Host selection retries (Envoy's host_selection_retry_max_attempts) per pick when `previous` is given.
const reselectAttempts = 3

/**
 * One upstream cluster (Envoy's cluster manager entry): its hosts, their health from active checks and
 * outlier detection, the load balancer over the usable ones, circuit breakers, and runtime membership
 * (`setEndpoints`, or DNS answers for `strictDns`).
 *
 * Events: `change` (after every rebuild), `health` (host, health) when active checks flip a host,
 * `healthChecked` (host, result) after every check, `ejected` (host, reason, duration), `unejected`
 * (host), `dnsUpdate` (addresses), `dnsError` (name, error). Never `error`.
 */
export class Cluster extends EventEmitter {
  readonly name: string
  readonly protocol: 'http1' | 'http2'
  readonly tls: Record<string, unknown> | undefined
  readonly connectTimeout: number
  readonly type: 'static' | 'strictDns'
  readonly lbPolicy: LbPolicy
  /** Ring hash or maglev: routes to it should have an `upstream.hashPolicy`. */
  readonly usesHash: boolean
  readonly breakers: CircuitBreakers

  readonly #config: ClusterConfig
  readonly #log: ClusterLog
  readonly #stats: ClusterStats
  readonly #lb: LoadBalancer
  readonly #hosts = new Map<string, Host>()
  // Removed hosts whose streams may still be open, kept so that a quick re-add finds them.
  readonly #draining = new Map<string, Host>()
  readonly #drainTimers = new Map<Host, NodeJS.Timeout>()
  readonly #healthChecker: HealthChecker | undefined
  readonly #outlier: OutlierDetector | undefined
  readonly #dns: DnsResolver | undefined
  #usable = 0
  #panic = false
  #started = false
  #closed = false
  #warnedHashPolicy = false

  /** Throws `SWY_ERR_CLUSTER_OPTIONS` naming the cluster and field when an option is wrong. */
  constructor (name: string, options: ClusterOptions, deps: ClusterDeps) {
    super()
    const config = resolveClusterOptions(name, options)
    this.name = name
    this.protocol = config.protocol
    this.tls = config.tls
    this.connectTimeout = config.connectTimeout
    this.type = config.type
    this.lbPolicy = config.lbPolicy
    this.usesHash = config.lbPolicy === 'ringHash' || config.lbPolicy === 'maglev'
    this.#config = config
    this.#log = deps.log
    this.#stats = new ClusterStats(deps.stats, name)
    this.breakers = new CircuitBreakers(config.circuitBreakers, this.#stats)
    this.#lb = createLoadBalancer(config)

    if (config.healthCheck !== undefined) {
      this.#healthChecker = new HealthChecker(config.healthCheck, { protocol: config.protocol, tls: config.tls }, this.#stats, {
        onChecked: (host, result) => this.emit('healthChecked', host, result),
        onTransition: (host, to) => this.#onActiveHealth(host, to)
      })
    }
    if (config.outlierDetection !== undefined) {
      this.#outlier = new OutlierDetector(config.outlierDetection, this.#stats, {
        onEject: (host, reason, duration) => {
          this.#log.info({ cluster: name, endpoint: host.address, reason, duration }, 'endpoint ejected')
          if (config.closeConnectionsOnHostHealthFailure) host.closeStreams(new SwyUpstreamHostUnhealthyError(host.address, name, 'ejected'))
          this.#refresh()
          this.emit('ejected', host, reason, duration)
        },
        onUneject: (host) => {
          this.#refresh()
          this.emit('unejected', host)
        }
      })
    }
    if (config.type === 'strictDns') {
      this.#dns = new DnsResolver(dnsTargets(config.endpoints), { servers: config.dnsResolvers, refreshRate: config.dnsRefreshRate }, this.#stats, {
        onUpdate: (addresses) => {
          if (this.#closed) return
          this.#apply(addresses)
          this.emit('dnsUpdate', addresses)
        },
        onError: (host, error) => {
          this.#log.warn({ cluster: name, host, err: error }, 'DNS resolution failed; keeping the last answer')
          this.emit('dnsError', host, error)
        }
      })
    } else {
      this.#apply(config.endpoints, false)
    }
    this.#refresh()
  }

  /** The cluster is in panic: too few healthy hosts, so every host is used (Envoy's healthy panic threshold). */
  get panic (): boolean {
    return this.#panic
  }

  /**
   * The host for one attempt: O(1) or O(log n), never a rebuild. `undefined` = no usable host: the router
   * answers 503 `no healthy upstream` (flag UH) and counts `upstream_cx_none_healthy`.
   */
  chooseHost (context: ChooseContext = {}): Host | undefined {
    if (this.#usable === 0) return undefined
    if (this.#panic) this.#stats.inc('lb_healthy_panic')
    const hash = toHash(context.hash)
    let host = this.#lb.pick(hash, 0)
    const previous = context.previous
    if (previous !== undefined && previous.length > 0) {
      for (let attempt = 1; attempt <= reselectAttempts && host !== undefined && previous.includes(host); attempt++) {
        host = this.#lb.pick(hash, attempt)
      }
    }
    return host
  }

  /** The outcome of one attempt on `host`, for outlier detection. */
  recordOutcome (host: Host, outcome: Outcome): void {
    this.#outlier?.record(host, outcome)
  }

  /** How long the host's current or last ejection lasts (ms); 0 if never ejected or no outlier detection. */
  ejectionDuration (host: Host): number {
    return this.#outlier?.ejectionDuration(host) ?? 0
  }

  /** Starts health checks and DNS; settles after the first DNS answer and the first round of checks. */
  async ready (): Promise<void> {
    if (!this.#started && !this.#closed) {
      this.#started = true
      for (const host of this.#hosts.values()) this.#healthChecker?.add(host)
    }
    if (this.#dns !== undefined) await this.#dns.start()
    if (this.#healthChecker !== undefined) await this.#healthChecker.firstRound()
  }

  /** Stops timers and checks (app.close()). Open streams are the router's to close. */
  close (): void {
    this.#closed = true
    this.#healthChecker?.close()
    this.#outlier?.close()
    this.#dns?.close()
    for (const timer of this.#drainTimers.values()) clearTimeout(timer)
    this.#drainTimers.clear()
  }

  /** The current members (not the draining ones), for the router's bookkeeping and the mesh page. */
  hosts (): Host[] {
    return [...this.#hosts.values()]
  }

  endpoints (): EndpointStatus[] {
    return this.hosts().map(h => ({ address: h.address, weight: h.weight, health: h.health }))
  }

  /**
   * Replaces the endpoint list (Envoy's EDS without a control plane). Validated like the options: a bad
   * entry throws `SWY_ERR_CLUSTER_OPTIONS` and changes nothing. For `strictDns`, the names are resolved now.
   */
  setEndpoints (list: Array<string | { address: string, weight?: number }>): void {
    const entries = parseEntries(this.name, list)
    if (this.#closed) return
    if (this.#dns !== undefined) this.#dns.setTargets(dnsTargets(entries))
    else this.#apply(entries)
  }

  /** Logs `SWY_ERR_HASH_POLICY_MISSING` once for this cluster when a route to it has no hash policy. */
  warnMissingHashPolicy (route: string): void {
    if (!this.usesHash || this.#warnedHashPolicy) return
    this.#warnedHashPolicy = true
    const err = new SwyHashPolicyMissingError(this.name, this.lbPolicy, route)
    this.#log.warn({ err, code: err.code, cluster: this.name, route }, err.message)
  }

  /** Makes the membership `entries`; `counted` false for the configured list (not a change). */
  #apply (entries: readonly ParsedEntry[], counted = true): void {
    const wanted = new Map<string, ParsedEntry>()
    for (const entry of entries) {
      const key = endpointKey(entry.endpoint)
      const seen = wanted.get(key)
      // The same address twice (listed twice, or two names resolving to it) is one host with both shares.
      if (seen === undefined) wanted.set(key, { ...entry })
      else seen.weight += entry.weight
    }
    let changed = false
    for (const [key, host] of this.#hosts) {
      if (!wanted.has(key)) {
        this.#remove(key, host)
        changed = true
      }
    }
    for (const [key, entry] of wanted) {
      const host = this.#hosts.get(key)
      if (host === undefined) {
        this.#add(key, entry)
        changed = true
      } else if (host.weight !== entry.weight) {
        host.weight = entry.weight
        changed = true
      }
    }
    for (const [key, host] of this.#draining) if (host.streams.size === 0 && !this.#drainTimers.has(host)) this.#draining.delete(key)
    if (changed && counted) this.#stats.inc('membership_change')
    if (changed) this.#refresh()
  }

  #add (key: string, entry: ParsedEntry): void {
    let host = this.#draining.get(key)
    if (host !== undefined) {
      this.#draining.delete(key)
      clearTimeout(this.#drainTimers.get(host))
      this.#drainTimers.delete(host)
      host.removed = false
      host.ejected = false
      host.weight = entry.weight
      // Back in the cluster: like any new endpoint, it takes traffic after one passing check.
      host.activeHealth = this.#healthChecker === undefined ? 'healthy' : 'pending'
    } else {
      host = new Host(entry.endpoint, entry.address, entry.weight, this.#healthChecker === undefined ? 'healthy' : 'pending')
    }
    this.#hosts.set(key, host)
    this.#outlier?.add(host)
    if (this.#started) this.#healthChecker?.add(host)
  }

  #remove (key: string, host: Host): void {
    this.#hosts.delete(key)
    this.#healthChecker?.remove(host)
    this.#outlier?.remove(host)
    host.removed = true
    // Envoy's default: a removed host's streams stay until they end. With drainTimeout, they get that long.
    if (host.streams.size === 0) return
    this.#draining.set(key, host)
    const drainTimeout = this.#config.drainTimeout
    if (drainTimeout === undefined) return
    const timer = setTimeout(() => {
      this.#drainTimers.delete(host)
      this.#draining.delete(key)
      host.closeStreams(new SwyUpstreamHostRemovedError(host.address, this.name, drainTimeout))
    }, drainTimeout)
    timer.unref()
    this.#drainTimers.set(host, timer)
  }

  #onActiveHealth (host: Host, to: 'healthy' | 'unhealthy'): void {
    const from = host.activeHealth
    host.activeHealth = to
    if (from !== 'pending' || to === 'unhealthy') this.#log.info({ cluster: this.name, endpoint: host.address, from, to }, 'endpoint health changed')
    if (to === 'unhealthy' && this.#config.closeConnectionsOnHostHealthFailure) {
      host.closeStreams(new SwyUpstreamHostUnhealthyError(host.address, this.name, 'unhealthy'))
    }
    this.#refresh()
    this.emit('health', host, host.health)
  }

  /** Rebuilds the load balancer over the usable hosts: once per membership or health change. */
  #refresh (): void {
    const all = [...this.#hosts.values()]
    // A host awaiting its first check is excluded (Envoy's `ignore_new_hosts_until_first_hc`): it counts
    // neither towards the panic threshold nor as a host to use in panic, so it takes traffic only once it passes.
    const eligible = all.filter(h => h.activeHealth !== 'pending')
    const healthy = eligible.filter(h => h.healthy)
    // Envoy: below the threshold share of healthy hosts, health is ignored and every host is used.
    this.#panic = eligible.length > 0 && 100 * healthy.length / eligible.length < this.#config.healthyPanicThreshold
    const usable = this.#panic ? eligible : healthy
    this.#lb.rebuild(usable, all)
    this.#usable = usable.length
    this.#stats.gauge('membership_total', all.length)
    this.#stats.gauge('membership_healthy', healthy.length)
    this.#stats.gauge('membership_degraded', 0)
    this.#stats.gauge('membership_excluded', all.length - eligible.length)
    this.emit('change')
  }
}

function createLoadBalancer (config: ClusterConfig): LoadBalancer {
  switch (config.lbPolicy) {
    case 'leastRequest': return new LeastRequestLoadBalancer(config.leastRequest)
    case 'random': return new RandomLoadBalancer()
    case 'ringHash': return new RingHashLoadBalancer(config.ringHash)
    case 'maglev': return new MaglevLoadBalancer(config.maglev)
    default: return new RoundRobinLoadBalancer()
  }
}

function dnsTargets (entries: readonly ParsedEntry[]): DnsTarget[] {
  return entries.map(e => ({ endpoint: e.endpoint, weight: e.weight }))
}

function toHash (hash: bigint | number | undefined): number | undefined {
  if (hash === undefined) return undefined
  return typeof hash === 'bigint' ? Number(BigInt.asUintN(32, hash)) : hash >>> 0
}
