// V8's sampling heap profile (HeapProfiler.stopSampling) over one phase, collected objects included: the
// JS-heap bytes allocated per message and the sites that allocate them. Buffers' backing stores (socket
// reads) live outside the JS heap and are not in it; their wrappers are.
import { classify, where } from './classify.ts'

interface Node { callFrame: { functionName: string, url: string, lineNumber: number }, selfSize: number, children: Node[] }
export interface SamplingHeapProfile { head: Node }

export function summariseAllocations (profile: SamplingHeapProfile, title: string, messages: number, top = 20): string {
  const sites = new Map<string, { bytes: number, owner: string, path: string }>()
  const byOwner = new Map<string, number>()
  let total = 0
  const walk = (node: Node, path: string[]): void => {
    const { functionName, url, lineNumber } = node.callFrame
    const here = functionName === '(root)' ? path : [...path, where(url, functionName, lineNumber)]
    if (node.selfSize > 0) {
      const owner = classify(url, functionName)
      const key = here.at(-1) ?? '(root)'
      const site = sites.get(key) ?? { bytes: 0, owner, path: here.slice(-5, -1).join(' → ') }
      site.bytes += node.selfSize
      sites.set(key, site)
      byOwner.set(owner, (byOwner.get(owner) ?? 0) + node.selfSize)
      total += node.selfSize
    }
    for (const c of node.children) walk(c, here)
  }
  walk(profile.head, [])
  const out = [`#### ${title}`, '', `JS heap allocated: ${(total / messages).toFixed(0)} B per message (${messages.toLocaleString('en')} messages, sampled).`, '',
    '| owner | B per message |', '| --- | ---: |']
  for (const [owner, b] of [...byOwner].sort((a, b) => b[1] - a[1])) out.push(`| ${owner} | ${(b / messages).toFixed(0)} |`)
  out.push('', '| allocation site | owner | B per message | called from |', '| --- | --- | ---: | --- |')
  for (const [key, s] of [...sites].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
    out.push(`| ${key.replace(/\|/g, '\\|')} | ${s.owner} | ${(s.bytes / messages).toFixed(0)} | ${s.path.replace(/\|/g, '\\|')} |`)
  }
  out.push('')
  return out.join('\n')
}
