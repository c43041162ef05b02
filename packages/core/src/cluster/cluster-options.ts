import { promises as dns } from 'node:dns'
import { ClusterSchema, EndpointEntrySchema, type ClusterOptions, type EndpointEntry } from '../plugin-options.js'
import { compileCheck } from '../schema-check.js'
import { SwyClusterOptionsError } from '../errors.js'
import { parseEndpoint, type Endpoint } from './endpoint.js'
import { healthCheckDefaults, type HealthCheckConfig } from './health-checker.js'
import { outlierDetectionDefaults, type OutlierDetectionConfig } from './outlier-detector.js'
import { defaultCircuitBreakers, type CircuitBreakerLimits } from './circuit-breakers.js'
import { defaultMaximumRingSize, defaultMinimumRingSize } from './ring-hash.js'
import { defaultMaglevTableSize } from './maglev.js'
import type { LbPolicy } from './load-balancer.js'

/** A cluster's options with every default applied and every cross-field rule checked. */
export interface ClusterConfig {
  endpoints: ParsedEntry[]
  protocol: 'http1' | 'http2'
  tls: Record<string, unknown> | undefined
  connectTimeout: number
  type: 'static' | 'strictDns'
  dnsRefreshRate: number
  dnsResolvers: string[] | undefined
  lbPolicy: LbPolicy
  leastRequest: { choiceCount: number, activeRequestBias: number }
  ringHash: { minimumRingSize: number, maximumRingSize: number }
  maglev: { tableSize: number }
  healthCheck: HealthCheckConfig | undefined
  outlierDetection: OutlierDetectionConfig | undefined
  circuitBreakers: CircuitBreakerLimits
  healthyPanicThreshold: number
  closeConnectionsOnHostHealthFailure: boolean
  drainTimeout: number | undefined
}

export interface ParsedEntry {
  endpoint: Endpoint
  /** As `endpoints()` reports it: the address as configured. */
  address: string
  weight: number
}

const checkCluster = compileCheck(ClusterSchema)
const checkEntry = compileCheck(EndpointEntrySchema)

/** Throws `SWY_ERR_CLUSTER_OPTIONS` naming the cluster and the field. */
export function resolveClusterOptions (name: string, options: ClusterOptions): ClusterConfig {
  const fail = (field: string, reason: string): never => { throw new SwyClusterOptionsError(name, field, reason) }
  const problem = checkCluster(options)
  if (problem !== null) fail(problem.field, problem.reason)

  const type = options.type ?? 'static'
  if (type !== 'strictDns') {
    if (options.dnsResolvers !== undefined) fail('dnsResolvers', "only a cluster of type 'strictDns' resolves names")
    if (options.dnsRefreshRate !== undefined) fail('dnsRefreshRate', "only a cluster of type 'strictDns' resolves names")
  }
  for (const [i, server] of (options.dnsResolvers ?? []).entries()) {
    try {
      new dns.Resolver().setServers([server])
    } catch (err) {
      fail(`dnsResolvers[${i}]`, `not an address (ip or ip:port): ${(err as Error).message}`)
    }
  }

  const lbPolicy = options.lbPolicy ?? 'roundRobin'
  const configFor = { leastRequestLbConfig: 'leastRequest', ringHashLbConfig: 'ringHash', maglevLbConfig: 'maglev' } as const
  for (const [field, policy] of Object.entries(configFor)) {
    if (options[field as keyof typeof configFor] !== undefined && lbPolicy !== policy) fail(field, `applies to lbPolicy '${policy}' only, the cluster uses '${lbPolicy}'`)
  }
  const ringHash = {
    minimumRingSize: options.ringHashLbConfig?.minimumRingSize ?? defaultMinimumRingSize,
    maximumRingSize: options.ringHashLbConfig?.maximumRingSize ?? defaultMaximumRingSize
  }
  if (ringHash.minimumRingSize > ringHash.maximumRingSize) {
    fail('ringHashLbConfig.minimumRingSize', `${ringHash.minimumRingSize} is more than maximumRingSize ${ringHash.maximumRingSize}`)
  }
  const tableSize = options.maglevLbConfig?.tableSize ?? defaultMaglevTableSize
  if (!isPrime(tableSize)) fail('maglevLbConfig.tableSize', `${tableSize} is not a prime number`)

  let healthCheck: HealthCheckConfig | undefined
  if (options.healthCheck !== undefined) {
    const hc = options.healthCheck
    if (hc.tcp === true && hc.path !== undefined) fail('healthCheck.path', 'a tcp check only connects; it sends no path')
    if (hc.tcp === true && hc.expectedStatuses !== undefined) fail('healthCheck.expectedStatuses', 'a tcp check only connects; it reads no status')
    healthCheck = {
      path: hc.path ?? healthCheckDefaults.path,
      interval: hc.interval ?? healthCheckDefaults.interval,
      timeout: hc.timeout ?? healthCheckDefaults.timeout,
      unhealthyThreshold: hc.unhealthyThreshold ?? healthCheckDefaults.unhealthyThreshold,
      healthyThreshold: hc.healthyThreshold ?? healthCheckDefaults.healthyThreshold,
      expectedStatuses: hc.expectedStatuses ?? healthCheckDefaults.expectedStatuses,
      tcp: hc.tcp ?? false
    }
    if (healthCheck.interval < healthCheck.timeout) {
      fail('healthCheck.interval', `${healthCheck.interval}ms is shorter than the timeout (${healthCheck.timeout}ms): checks would overlap`)
    }
    for (const [i, [lo, hi]] of healthCheck.expectedStatuses.entries()) {
      if (lo > hi) fail(`healthCheck.expectedStatuses[${i}]`, `range [${lo}, ${hi}] is empty`)
    }
  }

  let outlierDetection: OutlierDetectionConfig | undefined
  if (options.outlierDetection !== undefined) {
    const od = options.outlierDetection
    outlierDetection = {
      consecutive5xx: od.consecutive5xx ?? outlierDetectionDefaults.consecutive5xx,
      consecutiveGatewayFailure: od.consecutiveGatewayFailure,
      consecutiveLocalOriginFailure: od.consecutiveLocalOriginFailure ?? outlierDetectionDefaults.consecutiveLocalOriginFailure,
      interval: od.interval ?? outlierDetectionDefaults.interval,
      baseEjectionTime: od.baseEjectionTime ?? outlierDetectionDefaults.baseEjectionTime,
      maxEjectionPercent: od.maxEjectionPercent ?? outlierDetectionDefaults.maxEjectionPercent
    }
  }

  return {
    endpoints: parseEntries(name, options.endpoints),
    protocol: options.protocol ?? 'http1',
    tls: options.tls as Record<string, unknown> | undefined,
    connectTimeout: options.connectTimeout ?? 5000,
    type,
    dnsRefreshRate: options.dnsRefreshRate ?? 5000,
    dnsResolvers: options.dnsResolvers,
    lbPolicy,
    leastRequest: {
      choiceCount: options.leastRequestLbConfig?.choiceCount ?? 2,
      activeRequestBias: options.leastRequestLbConfig?.activeRequestBias ?? 1
    },
    ringHash,
    maglev: { tableSize },
    healthCheck,
    outlierDetection,
    circuitBreakers: { ...defaultCircuitBreakers, ...options.circuitBreakers },
    healthyPanicThreshold: options.healthyPanicThreshold ?? 50,
    closeConnectionsOnHostHealthFailure: options.closeConnectionsOnHostHealthFailure ?? false,
    drainTimeout: options.drainTimeout
  }
}

/** Validates and parses an endpoint list (the options' or `setEndpoints`'); throws naming the entry. */
export function parseEntries (name: string, list: unknown): ParsedEntry[] {
  if (!Array.isArray(list)) throw new SwyClusterOptionsError(name, 'endpoints', 'must be an array')
  if (list.length === 0) throw new SwyClusterOptionsError(name, 'endpoints', 'must have at least one endpoint')
  return list.map((entry: unknown, i) => {
    const problem = checkEntry(entry)
    if (problem !== null) {
      const field = problem.field === '(root)' ? `endpoints[${i}]` : `endpoints[${i}].${problem.field}`
      throw new SwyClusterOptionsError(name, field, problem.reason)
    }
    const e = entry as EndpointEntry
    const address = typeof e === 'string' ? e : e.address
    try {
      return { endpoint: parseEndpoint(address), address, weight: typeof e === 'string' ? 1 : e.weight ?? 1 }
    } catch (err) {
      throw new SwyClusterOptionsError(name, typeof e === 'string' ? `endpoints[${i}]` : `endpoints[${i}].address`, `"${address}": ${(err as Error).message}`)
    }
  })
}

function isPrime (n: number): boolean {
  if (n < 2) return false
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false
  return true
}
