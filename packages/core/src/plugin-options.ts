import Type, { type Static } from 'typebox'
import type { Filter } from './filter/filter.js'
import { compileCheck } from './schema-check.js'

export const ClusterSchema = Type.Object({
  endpoints: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
  protocol: Type.Optional(Type.Union([Type.Literal('http1'), Type.Literal('http2')])),
  tls: Type.Optional(Type.Object({}, { additionalProperties: true })),
  connectTimeout: Type.Optional(Type.Integer({ minimum: 1, description: 'milliseconds' }))
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
