import { promises as dns } from 'node:dns'
import net from 'node:net'
import { resolvedEndpoint, type Endpoint } from './endpoint.js'
import type { ClusterStats } from './cluster-stats.js'

/** One configured `strictDns` endpoint: a name to resolve, the port and scheme its answers get. */
export interface DnsTarget {
  endpoint: Endpoint
  weight: number
}

/** One address an answer gave: the endpoint to connect to, and how `endpoints()` shows it. */
export interface ResolvedAddress {
  endpoint: Endpoint
  address: string
  weight: number
}

export interface DnsEvents {
  /** Every resolution round, with every name's current addresses (a failed name keeps its last answer). */
  onUpdate (addresses: ResolvedAddress[]): void
  onError (name: string, error: Error): void
}

// "No such name" and "no record of this type" are answers (an empty one), not failures: Envoy's c-ares
// resolver treats ENOTFOUND and ENODATA alike, and a name that vanished takes its hosts with it.
const emptyAnswer = new Set(['ENODATA', 'ENOTFOUND', 'NOTFOUND', 'NODATA'])

/**
 * Envoy's strict DNS cluster: every name is resolved (A and AAAA) every `refreshRate` ms, and the
 * cluster's hosts are exactly the addresses of the latest answers. A name whose lookup fails (timeout,
 * refused, SERVFAIL) keeps the addresses it had. Rounds never overlap.
 *
 * With `servers`, names are asked of those servers (c-ares); without, of the system's resolver through
 * getaddrinfo, so `/etc/hosts` names such as `localhost` resolve as they do for Envoy's c-ares
 * getaddrinfo.
 */
export class DnsResolver {
  readonly #resolver: InstanceType<typeof dns.Resolver> | undefined
  readonly #refreshRate: number
  readonly #stats: ClusterStats
  readonly #events: DnsEvents
  #targets: readonly DnsTarget[]
  readonly #last = new Map<string, string[]>()
  #generation = 0
  #timer: NodeJS.Timeout | undefined
  #running = false
  #closed = false
  #first: Promise<void> | undefined

  /** Throws with the reason when a resolver address is not `ip` or `ip:port`. */
  constructor (targets: readonly DnsTarget[], options: { servers?: string[], refreshRate: number }, stats: ClusterStats, events: DnsEvents) {
    if (options.servers !== undefined) {
      this.#resolver = new dns.Resolver({ timeout: Math.min(options.refreshRate, 5000), tries: 2 })
      this.#resolver.setServers(options.servers)
    }
    this.#refreshRate = options.refreshRate
    this.#stats = stats
    this.#events = events
    this.#targets = targets
  }

  /** Runs the first round; settles once it has an answer or a failure for every name. */
  start (): Promise<void> {
    this.#first ??= this.#round()
    return this.#first
  }

  /** New names (from `setEndpoints`): resolved at once. */
  setTargets (targets: readonly DnsTarget[]): void {
    this.#targets = targets
    this.#generation++
    if (!this.#running && this.#first !== undefined) {
      clearTimeout(this.#timer)
      void this.#round()
    }
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#resolver?.cancel()
  }

  async #round (): Promise<void> {
    this.#running = true
    const generation = this.#generation
    const targets = this.#targets
    this.#stats.inc('update_attempt')
    const names = [...new Set(targets.map(t => t.endpoint.host))]
    const answers = await Promise.all(names.map(async (name) => await this.#lookup(name)))
    this.#running = false
    if (this.#closed) return
    if (generation !== this.#generation) {
      // The names changed while this round ran: its answers may name hosts no longer wanted.
      void this.#round()
      return
    }
    let failed = false
    for (const [i, name] of names.entries()) {
      const answer = answers[i]!
      if (answer instanceof Error) {
        failed = true
        this.#events.onError(name, answer)
      } else {
        this.#last.set(name, answer)
      }
    }
    for (const name of this.#last.keys()) if (!names.includes(name)) this.#last.delete(name)
    this.#stats.inc(failed ? 'update_failure' : 'update_success')
    const addresses: ResolvedAddress[] = []
    for (const target of targets) {
      for (const ip of this.#last.get(target.endpoint.host) ?? []) {
        const endpoint = resolvedEndpoint(target.endpoint, ip)
        const hostPort = `${ip.includes(':') ? `[${ip}]` : ip}:${endpoint.port}`
        addresses.push({ endpoint, address: endpoint.secure ? `https://${hostPort}` : hostPort, weight: target.weight })
      }
    }
    if (addresses.length === 0) this.#stats.inc('update_empty')
    this.#events.onUpdate(addresses)
    this.#timer = setTimeout(() => { void this.#round() }, this.#refreshRate)
    this.#timer.unref()
  }

  async #lookup (name: string): Promise<string[] | Error> {
    if (net.isIP(name) !== 0) return [name]
    const resolver = this.#resolver
    if (resolver === undefined) {
      try {
        return [...new Set((await dns.lookup(name, { all: true })).map(a => a.address))].sort()
      } catch (err) {
        return emptyAnswer.has((err as NodeJS.ErrnoException).code ?? '') ? [] : err as Error
      }
    }
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)])
    const ok = (r: PromiseSettledResult<string[]>): r is PromiseFulfilledResult<string[]> => r.status === 'fulfilled'
    const empty = (r: PromiseSettledResult<string[]>): boolean => r.status === 'rejected' && emptyAnswer.has((r.reason as NodeJS.ErrnoException).code ?? '')
    if ((ok(v4) || empty(v4)) && (ok(v6) || empty(v6))) {
      return [...(ok(v4) ? v4.value : []), ...(ok(v6) ? v6.value : [])].sort()
    }
    // One family answered with addresses while the other failed: use what arrived.
    if ((ok(v4) && v4.value.length > 0) || (ok(v6) && v6.value.length > 0)) {
      return [...(ok(v4) ? v4.value : []), ...(ok(v6) ? v6.value : [])].sort()
    }
    const reason = [v4, v6].find((r): r is PromiseRejectedResult => r.status === 'rejected' && !empty(r))!.reason as Error
    return reason
  }
}
