import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { FilterStatus, type Filter, type FilterContext, type FilterResult } from '@switchyard/core'

export interface Recorded {
  localReplies: Array<{ status: number, body?: string, headers?: Record<string, string> }>
  /** What went on toward the upstream / downstream, in order: passed chunks and injected ones. */
  toUpstream: Buffer[]
  toDownstream: Buffer[]
  ended: { upstream: boolean, downstream: boolean }
  aborted: Error[]
  resumed: number
  logs: Array<{ level: string, obj: unknown, msg?: string }>
}

/** A fake `FilterContext` (no sockets, no chain): records what a filter asks of it. */
export function fakeContext (opts: { upgradeType?: string | null, method?: string, url?: string } = {}) {
  const rec: Recorded = {
    localReplies: [], toUpstream: [], toDownstream: [], ended: { upstream: false, downstream: false }, aborted: [], resumed: 0, logs: []
  }
  let replacement: Buffer | undefined
  const logAt = (level: string) => (obj: unknown, msg?: string) => { rec.logs.push({ level, obj, msg }) }
  const log = { info: logAt('info'), debug: logAt('debug'), warn: logAt('warn'), error: logAt('error'), trace: logAt('trace'), fatal: logAt('fatal') } as unknown as FastifyBaseLogger
  const ctx: FilterContext = {
    upgradeType: opts.upgradeType === undefined ? 'websocket' : opts.upgradeType,
    route: { url: '/x', method: 'GET' },
    request: { method: opts.method ?? 'GET', url: opts.url ?? '/x', headers: {} } as unknown as FastifyRequest,
    log,
    state: {},
    get localReply () { return rec.localReplies.length > 0 },
    sendLocalReply (status, body, headers) { rec.localReplies.push({ status, body: body?.toString(), headers }) },
    pause () {},
    resume () { rec.resumed++ },
    abort (error) { rec.aborted.push(error ?? new Error('aborted')) },
    replaceData (chunk) { replacement = chunk },
    injectRequestData (chunk, endStream = false) { rec.toUpstream.push(chunk); if (endStream) rec.ended.upstream = true },
    injectResponseData (chunk, endStream = false) { rec.toDownstream.push(chunk); if (endStream) rec.ended.downstream = true }
  }
  /** Passes a chunk as the chain would: through `callback`, then on (or replaced) unless taken. */
  const drive = async (dir: 'request' | 'response', filter: Filter, chunk: Buffer, end = false): Promise<FilterResult> => {
    replacement = undefined
    const cb = dir === 'request' ? filter.onRequestData : filter.onResponseData
    let result = cb?.call(filter, ctx, chunk, end)
    const replaced = replacement
    replacement = undefined
    if (result instanceof Promise) result = await result
    if (result === undefined || result === FilterStatus.Continue) {
      ;(dir === 'request' ? rec.toUpstream : rec.toDownstream).push(replaced ?? chunk)
      if (end) rec.ended[dir === 'request' ? 'upstream' : 'downstream'] = true
    }
    return result
  }
  return { ctx, rec, drive, takeReplacement: () => { const r = replacement; replacement = undefined; return r } }
}

/** A seeded PRNG (mulberry32): the same chunkings on every run. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Cuts `bytes` into random chunks (1 byte up to `max`), reproducibly from `random`. */
export function randomChunks (bytes: Buffer, random: () => number, max = 64): Buffer[] {
  const out: Buffer[] = []
  let pos = 0
  while (pos < bytes.length) {
    const size = 1 + Math.floor(random() * random() * max)
    out.push(bytes.subarray(pos, pos + size))
    pos += size
  }
  return out
}
