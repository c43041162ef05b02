import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'

export interface SchemaProblem {
  /** Dotted path of the offending field, e.g. `upstream.weightedClusters[0].weight`. */
  field: string
  reason: string
}

/** Compiles once; `check` returns the first problem (de-duplicated, most specific first) or null. */
export function compileCheck (schema: TSchema): (value: unknown) => SchemaProblem | null {
  const compiled = Compile(schema)
  return (value) => {
    if (compiled.Check(value)) return null
    let best: SchemaProblem | null = null
    let bestDepth = -1
    for (const e of compiled.Errors(value)) {
      // additionalProperties:false yields a second "schema is false" error per extra key; keep the clear one.
      if (e.keyword === 'boolean') continue
      const path = pointerToField(e.instancePath)
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as { additionalProperties?: string[] }).additionalProperties?.[0]
        const field = path === '' ? String(extra) : `${path}.${String(extra)}`
        return { field, reason: 'unknown field' }
      }
      // The deepest path is the most specific (a union's branches each report at their own depth); the
      // root counts as depth 0, however its name reads.
      const depth = e.instancePath.split('/').length - 1
      if (depth > bestDepth) {
        best = { field: path === '' ? '(root)' : path, reason: e.message }
        bestDepth = depth
      }
    }
    return best ?? { field: '(root)', reason: 'invalid' }
  }
}

function pointerToField (pointer: string): string {
  let out = ''
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~')
    out += /^\d+$/.test(key) ? `[${key}]` : out === '' ? key : `.${key}`
  }
  return out
}
