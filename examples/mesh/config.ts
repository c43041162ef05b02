import { readFile } from 'node:fs/promises'
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'

const Port = Type.Integer({ minimum: 0, maximum: 65535, description: '0 = any free port' })

/** The mesh's topology: one file, every field optional in it; the embedded default fills the rest. */
export const MeshConfigSchema = Type.Object({
  host: Type.String({ minLength: 1, description: 'the loopback address every node listens on' }),
  /** Accepted as `Authorization: Bearer <token>` and, from the page, as the `mesh_token` cookie. */
  token: Type.String({ minLength: 8, pattern: '^[A-Za-z0-9._~+/-]+=*$', description: 'RFC 6750 b64token' }),
  front: Type.Object({
    port: Port,
    workers: Type.Integer({ minimum: 1, maximum: 64 }),
    /** ms open tunnels may keep running after Ctrl-C (core's `shutdownGracePeriod`). */
    shutdownGracePeriod: Type.Integer({ minimum: 0 })
  }, { additionalProperties: false }),
  sidecar: Type.Object({ port: Port }, { additionalProperties: false }),
  app: Type.Object({
    /** The first instance's port; instance i listens on `port + i` (all on free ports when 0). */
    port: Port,
    /** Instances of the app behind the health-checked clusters (the sidecar's, and the front's for legacy). */
    instances: Type.Integer({ minimum: 1, maximum: 8 }),
    /** ms between two health checks of each instance (the check's timeout is at most 500 ms). */
    healthCheckInterval: Type.Integer({ minimum: 50, maximum: 60_000 })
  }, { additionalProperties: false })
}, { additionalProperties: false })

export type MeshConfig = Static<typeof MeshConfigSchema>

/** The embedded default: fixed loopback ports, one front process, a 5 s drain, two app instances. */
export const defaultConfig: MeshConfig = {
  host: '127.0.0.1',
  token: 'mesh-demo-token',
  front: { port: 8080, workers: 1, shutdownGracePeriod: 5000 },
  sidecar: { port: 8081 },
  app: { port: 8082, instances: 2, healthCheckInterval: 1000 }
}

/** The ports of the app's instances (all 0 when `app.port` is 0: each takes a free one). */
export function appPorts (config: MeshConfig): number[] {
  return Array.from({ length: config.app.instances }, (_, i) => config.app.port === 0 ? 0 : config.app.port + i)
}

const check = Compile(MeshConfigSchema)

/** A configuration that does not fit the schema; the message names the field. */
export class MeshConfigError extends Error {
  constructor (message: string) {
    super(`mesh config: ${message}`)
    this.name = 'MeshConfigError'
  }
}

/**
 * Lays `overrides` over the embedded default and validates the result. Objects merge field by field;
 * anything else replaces, so a wrong shape (`"front": 5`) is reported at its own path.
 */
export function resolveConfig (overrides: unknown = {}): MeshConfig {
  const merged = merge(defaultConfig, overrides)
  if (check.Check(merged)) return merged
  throw new MeshConfigError(firstProblem(merged))
}

/** Reads a JSON file and resolves it over the default. */
export async function loadConfig (path: string): Promise<MeshConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new MeshConfigError(`cannot read ${path}: ${(err as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new MeshConfigError(`${path} is not JSON: ${(err as Error).message}`)
  }
  return resolveConfig(parsed)
}

function firstProblem (value: unknown): string {
  let best: { path: string, text: string } | undefined
  for (const e of check.Errors(value)) {
    // additionalProperties:false also yields a "schema is false" error per extra key; keep the clear one.
    if (e.keyword === 'boolean') continue
    const path = e.instancePath === '' ? '/' : e.instancePath
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperties?: string[] }).additionalProperties?.[0]
      return `${path === '/' ? '' : path}/${String(extra)} is not a known field`
    }
    if (best === undefined || path.length > best.path.length) best = { path, text: `${path} ${e.message}` }
  }
  return best?.text ?? 'invalid'
}

function merge (base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(over)) out[key] = merge(base[key], value)
  return out
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
