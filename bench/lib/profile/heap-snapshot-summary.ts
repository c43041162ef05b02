// Heap snapshots (.heapsnapshot) counted by constructor, and the difference between two of them per tunnel:
// what each idle tunnel keeps on the V8 heap.
import { readFileSync } from 'node:fs'

interface Snapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]] } }
  nodes: number[]
  strings: string[]
}

/** Live objects by `constructor` (objects, native wrappers) or `(type) name` (closures, arrays, strings, …): count and self bytes. */
export function countByConstructor (file: string): Map<string, { count: number, bytes: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const width = fields.length
  const iType = fields.indexOf('type')
  const iName = fields.indexOf('name')
  const iSize = fields.indexOf('self_size')
  const out = new Map<string, { count: number, bytes: number }>()
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]]
    const name = snap.strings[snap.nodes[i + iName]]
    let key: string
    if (type === 'object' || type === 'native') key = name
    else if (type === 'closure') key = `(closure) ${name === '' ? '(anonymous)' : name}`
    else if (type === 'string' || type === 'concatenated string' || type === 'sliced string') key = '(string)'
    else if (type === 'code') key = '(code)'
    else if (type === 'hidden' || type === 'object shape') key = `(${type}) ${name.replace(/ @\d+$/, '').slice(0, 40)}`
    else key = `(${type}) ${name.slice(0, 40)}`
    const entry = out.get(key) ?? { count: 0, bytes: 0 }
    entry.count++
    entry.bytes += snap.nodes[i + iSize]
    out.set(key, entry)
  }
  return out
}

/** Markdown: the constructors whose live bytes grew most from `before` to `after`, per tunnel. */
export function summariseHeapGrowth (beforeFile: string, afterFile: string, tunnels: number, title: string, top = 30): string {
  const before = countByConstructor(beforeFile)
  const after = countByConstructor(afterFile)
  const rows: Array<{ key: string, count: number, bytes: number }> = []
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, bytes: 0 }
    rows.push({ key, count: (a.count - b.count) / tunnels, bytes: (a.bytes - b.bytes) / tunnels })
  }
  rows.sort((x, y) => y.bytes - x.bytes)
  const total = rows.reduce((s, r) => s + r.bytes, 0)
  const out = [`#### ${title}`, '', `Heap growth per idle tunnel: ${total.toFixed(0)} B (${tunnels.toLocaleString('en')} tunnels; self sizes, live objects after a full GC).`, '',
    '| constructor | objects per tunnel | bytes per tunnel |', '| --- | ---: | ---: |']
  for (const r of rows.slice(0, top)) {
    if (Math.abs(r.bytes) < 8) break
    out.push(`| ${r.key.replace(/\|/g, '\\|')} | ${r.count.toFixed(2)} | ${r.bytes.toFixed(0)} |`)
  }
  out.push('')
  return out.join('\n')
}
