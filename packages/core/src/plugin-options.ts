import Type, { type Static } from 'typebox'
import type { Filter } from './filter/filter.js'
import { compileCheck } from './schema-check.js'

const Ms = (minimum: number): ReturnType<typeof Type.Integer> => Type.Integer({ minimum, description: 'milliseconds' })

/** An endpoint: `host:port`, `[v6]:port` or an `http://` / `https://` URL, with Envoy's load-balancing weight. */
export const EndpointEntrySchema = Type.Union([
  Type.String({ minLength: 1 }),
  Type.Object({
    address: Type.String({ minLength: 1 }),
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 128 }))
  }, { additionalProperties: false })
])
export type EndpointEntry = Static<typeof EndpointEntrySchema>

/** Envoy's cluster, in camelCase; durations in milliseconds. Defaults are Envoy's unless noted. */
export const ClusterSchema = Type.Object({
  endpoints: Type.Array(EndpointEntrySchema, { minItems: 1 }),
  protocol: Type.Optional(Type.Union([Type.Literal('http1'), Type.Literal('http2')])),
  tls: Type.Optional(Type.Object({}, { additionalProperties: true })),
  connectTimeout: Type.Optional(Ms(1)),
  type: Type.Optional(Type.Union([Type.Literal('static'), Type.Literal('strictDns')])),
  dnsRefreshRate: Type.Optional(Ms(1)),
  // `ip` or `ip:port` (`[v6]:port`), as node:dns `Resolver#setServers` takes them.
  dnsResolvers: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
  lbPolicy: Type.Optional(Type.Union([
    Type.Literal('roundRobin'), Type.Literal('leastRequest'), Type.Literal('random'), Type.Literal('ringHash'), Type.Literal('maglev')
  ])),
  leastRequestLbConfig: Type.Optional(Type.Object({
    choiceCount: Type.Optional(Type.Integer({ minimum: 2, maximum: 100 })),
    activeRequestBias: Type.Optional(Type.Number({ minimum: 0 }))
  }, { additionalProperties: false })),
  ringHashLbConfig: Type.Optional(Type.Object({
    minimumRingSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 8388608 })),
    maximumRingSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 8388608 }))
  }, { additionalProperties: false })),
  maglevLbConfig: Type.Optional(Type.Object({
    tableSize: Type.Optional(Type.Integer({ minimum: 2, maximum: 5000011 }))
  }, { additionalProperties: false })),
  healthCheck: Type.Optional(Type.Object({
    path: Type.Optional(Type.String({ pattern: '^/[^\\s\\0]*$' })),
    interval: Type.Optional(Ms(1)),
    timeout: Type.Optional(Ms(1)),
    unhealthyThreshold: Type.Optional(Type.Integer({ minimum: 1 })),
    healthyThreshold: Type.Optional(Type.Integer({ minimum: 1 })),
    // Inclusive ranges of statuses that pass.
    expectedStatuses: Type.Optional(Type.Array(Type.Tuple([
      Type.Integer({ minimum: 100, maximum: 599 }), Type.Integer({ minimum: 100, maximum: 599 })
    ]), { minItems: 1 })),
    tcp: Type.Optional(Type.Boolean())
  }, { additionalProperties: false })),
  outlierDetection: Type.Optional(Type.Object({
    consecutive5xx: Type.Optional(Type.Integer({ minimum: 1 })),
    consecutiveGatewayFailure: Type.Optional(Type.Integer({ minimum: 1 })),
    consecutiveLocalOriginFailure: Type.Optional(Type.Integer({ minimum: 1 })),
    interval: Type.Optional(Ms(1)),
    baseEjectionTime: Type.Optional(Ms(1)),
    maxEjectionPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 }))
  }, { additionalProperties: false })),
  circuitBreakers: Type.Optional(Type.Object({
    maxConnections: Type.Optional(Type.Integer({ minimum: 0 })),
    maxPendingRequests: Type.Optional(Type.Integer({ minimum: 0 })),
    maxRequests: Type.Optional(Type.Integer({ minimum: 0 })),
    maxRetries: Type.Optional(Type.Integer({ minimum: 0 }))
  }, { additionalProperties: false })),
  healthyPanicThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
  closeConnectionsOnHostHealthFailure: Type.Optional(Type.Boolean()),
  // Set: a removed endpoint's open streams are closed this long after its removal (Envoy keeps them).
  drainTimeout: Type.Optional(Ms(0))
}, { additionalProperties: false })
export type ClusterOptions = Static<typeof ClusterSchema>

const FilterShape = Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: true })

export const UpgradeConfigSchema = Type.Object({
  upgradeType: Type.String({ minLength: 1, pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+(/[!#$%&\'*+.^_`|~0-9A-Za-z-]+)?$' }),
  filters: Type.Optional(Type.Array(FilterShape)),
  enabled: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

export const PluginOptionsSchema = Type.Object({
  clusters: Type.Optional(Type.Record(Type.String({ minLength: 1 }), ClusterSchema)),
  upgradeConfigs: Type.Optional(Type.Array(UpgradeConfigSchema)),
  filters: Type.Optional(Type.Array(FilterShape)),
  highWaterMark: Type.Optional(Type.Integer({ minimum: 1024 })),
  shutdownGracePeriod: Type.Optional(Type.Integer({ minimum: 0, description: 'milliseconds' })),
  maxRequestHeaders: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  // Fastify's own registration options; anything else unknown is a typo and fails app.ready().
  prefix: Type.Optional(Type.String()),
  logLevel: Type.Optional(Type.String()),
  logSerializers: Type.Optional(Type.Object({}, { additionalProperties: true }))
}, { additionalProperties: false })

/** Envoy's HTTP connection manager `upgrade_configs[]` entry. */
export interface UpgradeConfig {
  upgradeType: string
  /** Given: replaces the default chain for this type; `[]` = router only. */
  filters?: Filter[]
  enabled?: boolean
}

export interface SwitchyardOptions {
  clusters?: Record<string, ClusterOptions>
  upgradeConfigs?: UpgradeConfig[]
  /** The default HTTP filter chain (the router is always last and implicit). */
  filters?: Filter[]
  /** Bytes a stream may hold per direction before it stops reading (default 64 KiB). */
  highWaterMark?: number
  /**
   * On `app.close()`: ms open tunnels may keep running before they are closed (default 0). New upgrades
   * get 503 from the start of the close.
   */
  shutdownGracePeriod?: number
  /**
   * Most request headers an upgrade or a proxied request may carry; more → 431 (Envoy's
   * `max_request_headers_count`, default 100). Node silently drops headers past ~1,000, so a proxy must
   * refuse rather than forward a truncated head.
   */
  maxRequestHeaders?: number
}

export const checkPluginOptions = compileCheck(PluginOptionsSchema)
