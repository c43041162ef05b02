import Type, { type Static } from 'typebox'
import { compileCheck } from './schema-check.js'

const Millis = Type.Integer({ minimum: 0, description: 'milliseconds' })
const Token = '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$'
const Terminal = Type.Optional(Type.Boolean())

/** Envoy's RouteAction.hash_policy, for `ringHash` and `maglev` clusters: the first entry that yields a value is hashed. */
export const HashPolicySchema = Type.Array(Type.Union([
  Type.Object({ header: Type.String({ pattern: Token }), terminal: Terminal }, { additionalProperties: false }),
  Type.Object({
    cookie: Type.Object({
      name: Type.String({ pattern: Token }),
      // Given: a request without the cookie gets one generated (`Max-Age` = ttl in seconds; 0 = session cookie).
      ttl: Type.Optional(Millis),
      path: Type.Optional(Type.String({ pattern: '^/[^;\\s\\0]*$' }))
    }, { additionalProperties: false }),
    terminal: Terminal
  }, { additionalProperties: false }),
  Type.Object({ sourceIp: Type.Literal(true), terminal: Terminal }, { additionalProperties: false }),
  Type.Object({ queryParameter: Type.String({ minLength: 1 }), terminal: Terminal }, { additionalProperties: false })
]), { minItems: 1 })
export type HashPolicy = Static<typeof HashPolicySchema>

export const UpstreamSchema = Type.Object({
  cluster: Type.Optional(Type.String({ minLength: 1 })),
  weightedClusters: Type.Optional(Type.Array(Type.Object({
    cluster: Type.String({ minLength: 1 }),
    weight: Type.Integer({ minimum: 0 })
  }, { additionalProperties: false }), { minItems: 1 })),
  runtimeFraction: Type.Optional(Type.Object({
    runtimeKey: Type.String({ minLength: 1 }),
    defaultPercent: Type.Number({ minimum: 0, maximum: 100 }),
    fallbackCluster: Type.String({ minLength: 1 })
  }, { additionalProperties: false })),
  // No CR, LF or NUL: these end up in a request head (header injection).
  prefixRewrite: Type.Optional(Type.String({ pattern: '^/[^\\r\\n\\0]*$' })),
  hostRewrite: Type.Optional(Type.String({ minLength: 1, pattern: '^[^\\r\\n\\0]+$' })),
  autoHostRewrite: Type.Optional(Type.Boolean()),
  timeout: Type.Optional(Millis),
  idleTimeout: Type.Optional(Millis),
  retries: Type.Optional(Type.Object({
    numRetries: Type.Integer({ minimum: 0, maximum: 10 }),
    retryOn: Type.Optional(Type.Array(Type.Union([Type.Literal('5xx'), Type.Literal('connect-failure'), Type.Literal('reset')])))
  }, { additionalProperties: false })),
  mirror: Type.Optional(Type.Object({
    cluster: Type.String({ minLength: 1 }),
    percent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 }))
  }, { additionalProperties: false })),
  hashPolicy: Type.Optional(HashPolicySchema)
}, { additionalProperties: false })
export type UpstreamOptions = Static<typeof UpstreamSchema>

export const RouteUpgradeConfigSchema = Type.Object({
  upgradeType: Type.String({ minLength: 1, pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+(/[!#$%&\'*+.^_`|~0-9A-Za-z-]+)?$' }),
  // Envoy's route-level `enabled` defaults to true: naming a type enables it.
  enabled: Type.Optional(Type.Boolean())
}, { additionalProperties: false })
export type RouteUpgradeConfig = Static<typeof RouteUpgradeConfigSchema>

export const RedirectSchema = Type.Object({
  pathRedirect: Type.Optional(Type.String({ pattern: '^/[^\\r\\n\\0]*$' })),
  hostRedirect: Type.Optional(Type.String({ minLength: 1, pattern: '^[^\\r\\n\\0]+$' })),
  schemeRedirect: Type.Optional(Type.Union([Type.Literal('http'), Type.Literal('https')])),
  responseCode: Type.Optional(Type.Union([Type.Literal(301), Type.Literal(302), Type.Literal(303), Type.Literal(307), Type.Literal(308)]))
}, { additionalProperties: false })
export type RedirectOptions = Static<typeof RedirectSchema>

/**
 * Envoy's route `connect_config`: a CONNECT to this route is terminated here — a TCP connection to the
 * chosen endpoint, then `200` and the tunnel. Without it a CONNECT is forwarded to the endpoint.
 */
export const ConnectConfigSchema = Type.Record(Type.String(), Type.Never(), { description: 'no fields yet: {} terminates' })
export type ConnectConfig = Static<typeof ConnectConfigSchema>

/** The route options Switchyard adds to Fastify's (declaration-merged in `fastify-augment.ts`). */
export const RouteOptionsSchema = Type.Object({
  upstream: Type.Optional(UpstreamSchema),
  upgradeConfigs: Type.Optional(Type.Array(RouteUpgradeConfigSchema)),
  useWebsocket: Type.Optional(Type.Boolean()),
  redirect: Type.Optional(RedirectSchema),
  connectConfig: Type.Optional(ConnectConfigSchema)
})
export type SwitchyardRouteOptions = Static<typeof RouteOptionsSchema>

export const checkRouteOptions = compileCheck(RouteOptionsSchema)
