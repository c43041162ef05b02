import type { FastifyReply, FastifyRequest } from 'fastify'
import { appStateOf } from './app-state.js'
import type { StatRecord } from './stats.js'

/**
 * Prometheus text exposition (format 0.0.4) of stat records, as Envoy's own exposition names them:
 * cluster stats become `envoy_cluster_<stat>{envoy_cluster_name="<name>"}`; per-type upgrade stats
 * `<prefix>_upgrade_<stat>{upgrade_type="<type>"}`; the connection manager's `<prefix>_<stat>`. Dots in
 * a stat name become `_`; the kind comes from the record.
 */
export function toPrometheus (records: readonly StatRecord[], prefix = 'switchyard'): string {
  const families = new Map<string, { kind: string, lines: string[] }>()
  const sorted = [...records].sort((a, b) => keyOf(a).localeCompare(keyOf(b)))
  for (const r of sorted) {
    let name: string
    let labels = ''
    if (r.cluster !== undefined) {
      name = `envoy_cluster_${r.name}`
      labels = `{envoy_cluster_name="${escapeLabel(r.cluster)}"}`
    } else if (r.upgradeType !== undefined) {
      name = `${prefix}_upgrade_${r.name}`
      labels = `{upgrade_type="${escapeLabel(r.upgradeType)}"}`
    } else {
      name = `${prefix}_${r.name}`
    }
    name = name.replace(/[^a-zA-Z0-9_:]/g, '_')
    let family = families.get(name)
    if (family === undefined) families.set(name, family = { kind: r.kind, lines: [] })
    family.lines.push(`${name}${labels} ${r.value}`)
  }
  let out = ''
  for (const [name, family] of families) out += `# TYPE ${name} ${family.kind}\n${family.lines.join('\n')}\n`
  return out
}

function keyOf (r: StatRecord): string {
  return `${r.cluster ?? ''}\u0000${r.upgradeType ?? ''}\u0000${r.name}`
}

function escapeLabel (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** A route handler serving the stats in Prometheus text format: `app.get('/stats/prometheus', prometheusHandler)`. */
export function prometheusHandler (this: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const app = appStateOf(request.server)
  const text = app === undefined ? '' : toPrometheus(app.stats.records())
  return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text)
}
