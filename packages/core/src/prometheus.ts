import type { FastifyReply, FastifyRequest } from 'fastify'
import { kSwitchyard } from './symbols.js'
import type { SwitchyardCore } from './core.js'

/** Scoped stat prefixes and the label each scope's name becomes. */
const scopes: Record<string, string> = { cluster: 'cluster', upgrade: 'upgrade_type' }

/**
 * Prometheus text exposition (format 0.0.4) of a stats snapshot. Envoy's stat names are kept;
 * `cluster.<name>.x` becomes `<prefix>_cluster_x{cluster="<name>"}` and `upgrade.<type>.x`
 * `<prefix>_upgrade_x{upgrade_type="<type>"}`, as Envoy's own exposition turns scopes into labels.
 * Stats ending in `_active` are gauges, the rest counters.
 */
export function toPrometheus (snapshot: Record<string, number>, prefix = 'switchyard'): string {
  const families = new Map<string, string[]>()
  for (const key of Object.keys(snapshot).sort()) {
    const parts = key.split('.')
    let name: string
    let labels = ''
    const label = parts.length >= 3 ? scopes[parts[0]!] : undefined
    if (label !== undefined) {
      name = `${prefix}_${parts[0]}_${parts.slice(2).join('_')}`
      labels = `{${label}="${escapeLabel(parts[1]!)}"}`
    } else {
      name = `${prefix}_${parts.join('_')}`
    }
    name = name.replace(/[^a-zA-Z0-9_:]/g, '_')
    let lines = families.get(name)
    if (lines === undefined) families.set(name, lines = [])
    lines.push(`${name}${labels} ${snapshot[key]}`)
  }
  let out = ''
  for (const [name, lines] of families) {
    out += `# TYPE ${name} ${name.endsWith('_active') ? 'gauge' : 'counter'}\n${lines.join('\n')}\n`
  }
  return out
}

function escapeLabel (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** A route handler serving the stats in Prometheus text format: `app.get('/stats/prometheus', prometheusHandler)`. */
export function prometheusHandler (this: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const holder = (request.server as unknown as Record<symbol, { core: SwitchyardCore } | undefined>)[kSwitchyard]
  const text = holder === undefined ? '' : toPrometheus(holder.core.stats.snapshot())
  return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text)
}
