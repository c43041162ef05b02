import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { checkHeaders, type Headers } from '../headers.js'
import { SwyFilterError, SwyInvalidHeaderError } from '../errors.js'
import { FilterStatus, type CloseReason, type Filter, type FilterContext, type FilterResult } from './filter.js'

/** Where events leave the chain: the router (request direction) or the downstream (response direction). */
export interface ChainSink {
  headers (statusCode: number, headers: Headers, endStream: boolean): void
  /** Returns false when the destination wants no more for now (backpressure). */
  data (chunk: Buffer, endStream: boolean): boolean
}

/** What the owner of a stream does for the chain's context calls. */
export interface ChainOwner {
  localReply (fromFilter: number, status: number, body: Buffer | undefined, headers: Record<string, string>): void
  abort (error: Error): void
  pause (): void
  resume (): void
  /** The chain's own queue drained below the high-water mark: reading may resume. */
  drained (direction: 'request' | 'response'): void
}

export interface ChainInit {
  filters: readonly Filter[]
  upgradeType: string | null
  route: { url: string, method: string | string[] }
  request: FastifyRequest
  log: FastifyBaseLogger
  owner: ChainOwner
  /** The router: where request events leave the chain. */
  upstreamSink: ChainSink
  /** The downstream responder: where response events leave the chain. */
  downstreamSink: ChainSink
  highWaterMark?: number
}

type Kind = 'headers' | 'data'
interface Item {
  kind: Kind
  status: number
  headers: Headers | undefined
  chunk: Buffer
  end: boolean
  /** Position in the direction's order of the next filter to run. */
  pos: number
  /** Items behind this one may run filters strictly before this position. */
  barrier: number
  /** Parked: waits for `ctx.resume()` (headers) or for a Promise to settle. */
  waiting: boolean
  /** The filter that parked it, for `resume()`. */
  parkedBy: number
}

const EMPTY = Buffer.alloc(0)
const DONE = 0
const PARKED = 1
const CONSUMED = 2

/** One direction of the chain: request (filters in order) or response (in reverse). */
class Direction {
  readonly queue: Item[] = []
  queuedBytes = 0
  /**
   * Data chunks a filter stopped with StopIteration, by filter index, in arrival order: its `ctx.resume()`
   * sends them on from the next filter (Envoy's `continueDecoding`); its Continue on a later chunk means
   * it took them (held, dropped or replaced them), and they are let go.
   */
  readonly stopped = new Map<number, Item[]>()
  /** The filter whose data callback is running (-1: none), and whether it called `ctx.resume()` meanwhile. */
  #inData = -1
  #resumedInData = false

  constructor (
    readonly chain: FilterChain,
    readonly name: 'request' | 'response',
    readonly order: readonly number[],
    readonly sink: ChainSink,
    readonly hasData: boolean
  ) {}

  push (kind: Kind, status: number, headers: Headers | undefined, chunk: Buffer, end: boolean): boolean {
    if (this.chain.replied) return true
    const item: Item = { kind, status, headers, chunk, end, pos: 0, barrier: 0, waiting: false, parkedBy: -1 }
    const last = this.queue[this.queue.length - 1]
    if (last === undefined) {
      const r = this.run(item, this.order.length)
      if (r === DONE) return this.deliver(item)
      if (r === PARKED) this.enqueue(item)
      return true
    }
    // Something is parked ahead: run only the filters it has already passed, then queue behind it.
    const r = this.run(item, last.barrier)
    if (r === CONSUMED) return true
    if (r === DONE) item.pos = last.barrier
    if (r !== PARKED) item.barrier = item.pos
    this.enqueue(item)
    // A callback above may have resumed (and drained) what was parked: let this item follow it.
    if (!this.queue[0]!.waiting) this.drain()
    return this.queuedBytes < this.chain.highWaterMark
  }

  /** Data injected by the filter at order position `from - 1`: runs from `from`, behind anything queued. */
  inject (from: number, chunk: Buffer, end: boolean): void {
    const item: Item = { kind: 'data', status: 0, headers: undefined, chunk, end, pos: from, barrier: from, waiting: false, parkedBy: -1 }
    if (this.queue.length === 0) {
      const r = this.run(item, this.order.length)
      if (r === DONE) this.deliver(item)
      else if (r === PARKED) this.enqueue(item)
      return
    }
    this.enqueue(item)
  }

  private enqueue (item: Item): void {
    this.queue.push(item)
    this.queuedBytes += item.chunk.length
  }

  /** Runs `item` through filters [item.pos, limit). */
  run (item: Item, limit: number): number {
    const chain = this.chain
    for (let p = item.pos; p < limit; p++) {
      const index = this.order[p]!
      const filter = chain.filters[index]!
      let result: FilterResult
      const ctx = chain.contexts[index]!
      try {
        if (this.name === 'request') {
          if (item.kind === 'headers') {
            if (filter.onRequestHeaders === undefined) continue
            result = filter.onRequestHeaders(ctx, item.headers!, item.end)
          } else {
            if (filter.onRequestData === undefined) continue
            chain.replacement = undefined
            this.#inData = index
            result = filter.onRequestData(ctx, item.chunk, item.end)
          }
        } else if (item.kind === 'headers') {
          if (filter.onResponseHeaders === undefined) continue
          result = filter.onResponseHeaders(ctx, item.status, item.headers!, item.end)
        } else {
          if (filter.onResponseData === undefined) continue
          chain.replacement = undefined
          this.#inData = index
          result = filter.onResponseData(ctx, item.chunk, item.end)
        }
      } catch (err) {
        this.#inData = -1
        this.#resumedInData = false
        chain.fail(filter, err)
        return CONSUMED
      }
      // A resume() from inside this data callback sends the stopped chunks on only if this one stops too.
      let resumed = false
      if (this.#inData !== -1) {
        this.#inData = -1
        resumed = this.#resumedInData
        this.#resumedInData = false
      }
      if (chain.closed || chain.replied) return CONSUMED
      if (item.kind === 'data' && chain.replacement !== undefined) {
        item.chunk = chain.replacement
        chain.replacement = undefined
      }
      if (result === undefined || result === FilterStatus.Continue) {
        if (this.stopped.size > 0 && item.kind === 'data') this.stopped.delete(index)
        continue
      }
      if (result === FilterStatus.StopIteration) {
        if (item.kind === 'data') {
          this.#stop(item, index, p + 1)
          if (resumed) this.#release(index)
          return CONSUMED
        }
        item.pos = p + 1
        item.barrier = p + 1
        item.waiting = true
        item.parkedBy = index
        return PARKED
      }
      if (typeof (result as Promise<unknown>).then === 'function') {
        if (resumed) this.#release(index)
        item.pos = p + 1
        // A pending data callback must not see the next chunk before it settles.
        item.barrier = item.kind === 'data' ? p : p + 1
        item.waiting = true
        item.parkedBy = index
        ;(result as Promise<FilterStatus | void>).then(
          (status) => this.settle(item, index, status),
          (err: unknown) => chain.fail(filter, err)
        )
        return PARKED
      }
    }
    return DONE
  }

  private settle (item: Item, index: number, status: FilterStatus | void): void {
    if (this.chain.closed || item.parkedBy !== index) return
    if (status === FilterStatus.StopIteration) {
      if (item.kind !== 'data') return // parked headers wait for ctx.resume()
      this.remove(item)
      this.#stop(item, index, item.pos)
    } else {
      if (item.kind === 'data') this.stopped.delete(index)
      item.waiting = false
    }
    this.drain()
  }

  /** A data chunk stopped at filter `index`: kept until that filter resumes (or takes it by going on). */
  #stop (item: Item, index: number, from: number): void {
    const held = this.stopped.get(index)
    const stopped = { ...item, pos: from, barrier: from, waiting: false, parkedBy: -1 }
    if (held === undefined) this.stopped.set(index, [stopped])
    else held.push(stopped)
  }

  private remove (item: Item): void {
    const i = this.queue.indexOf(item)
    if (i >= 0) {
      this.queue.splice(i, 1)
      this.queuedBytes -= item.chunk.length
    }
  }

  /**
   * The head parked again further on: the items behind it catch up to its new barrier, so each filter
   * still sees data in order and a filter that waits for data (a buffer) gets it.
   */
  #advanceBehind (head: Item): void {
    for (let i = 1; i < this.queue.length; i++) {
      const item = this.queue[i]!
      if (item.waiting) return
      if (item.pos >= head.barrier) continue
      const r = this.run(item, head.barrier)
      if (r === PARKED) return
      if (r === CONSUMED) {
        this.queue.splice(i--, 1)
        this.queuedBytes -= item.chunk.length
        continue
      }
      item.pos = head.barrier
      item.barrier = head.barrier
    }
  }

  /**
   * Called from `ctx.resume()` of filter `index`: headers it parked go on, then every data chunk it stopped,
   * in order, from the filter after it (behind anything still queued).
   */
  resumeFrom (index: number): void {
    const head = this.queue[0]
    if (head !== undefined && head.waiting && head.parkedBy === index && head.kind === 'headers') {
      head.waiting = false
      this.drain()
    }
    // Inside the filter's own data callback: decided when it returns (Continue means it took them).
    if (this.#inData === index) this.#resumedInData = true
    else this.#release(index)
  }

  #release (index: number): void {
    const held = this.stopped.get(index)
    if (held === undefined) return
    this.stopped.delete(index)
    for (const item of held) {
      if (this.chain.closed || this.chain.replied) return
      this.inject(item.pos, item.chunk, item.end)
    }
  }

  #draining = false
  drain (): void {
    if (this.#draining) return
    this.#draining = true
    const wasOver = this.queuedBytes >= this.chain.highWaterMark
    try {
      while (this.queue.length > 0 && !this.chain.closed) {
        const item = this.queue[0]!
        if (item.waiting) break
        item.parkedBy = -1
        const r = this.run(item, this.order.length)
        if (r === PARKED) {
          this.#advanceBehind(item)
          break
        }
        this.queue.shift()
        this.queuedBytes -= item.chunk.length
        if (r === DONE) this.deliver(item)
      }
    } finally {
      this.#draining = false
    }
    if (wasOver && this.queuedBytes < this.chain.highWaterMark && !this.chain.closed) {
      this.chain.owner.drained(this.name)
    }
  }

  /**
   * Hands an item to the sink: where the filters' output meets the wire. Headers are checked here, once;
   * whatever the sink throws (a transport refusing a head, a write after its end) ends this stream with a
   * local reply or a reset, and never escapes to the socket's event handler or a Promise.
   */
  deliver (item: Item): boolean {
    try {
      if (item.kind === 'headers') {
        const problem = checkHeaders(item.headers!)
        if (problem !== null) {
          this.chain.sinkFailed(new SwyInvalidHeaderError(problem.name, this.name === 'request' ? 'upstream' : 'downstream', problem.reason))
          return true
        }
        this.sink.headers(item.status, item.headers!, item.end)
        return true
      }
      return this.sink.data(item.chunk, item.end)
    } catch (err) {
      this.chain.sinkFailed(err as Error)
      return true
    }
  }
}

/**
 * The filter chain of one stream (Envoy's `FilterManager`): filters in order for the request, in reverse
 * for the response, and a sink at each end (the router upstream, the downstream responder).
 */
export class FilterChain {
  readonly filters: readonly Filter[]
  readonly contexts: FilterContext[]
  readonly owner: ChainOwner
  readonly highWaterMark: number
  readonly request: Direction
  readonly response: Direction
  readonly state: Record<string | symbol, unknown> = {}
  /** Set by `ctx.replaceData` during a data callback. */
  replacement: Buffer | undefined
  closed = false
  /** A local reply was sent: nothing iterates any more (Envoy stops the chain on `sendLocalReply`). */
  replied = false
  /** Set when a local reply starts through the response callbacks (`ctx.localReply`). */
  localReplying = false
  /** Envoy's response flags (`ctx.responseFlags`), set by the router when it answers itself. */
  responseFlags = '-'

  constructor (init: ChainInit) {
    this.filters = init.filters
    this.owner = init.owner
    this.highWaterMark = init.highWaterMark ?? 64 * 1024
    const n = init.filters.length
    const forward = Array.from({ length: n }, (_, i) => i)
    this.request = new Direction(this, 'request', forward, init.upstreamSink, init.filters.some(f => f.onRequestData !== undefined))
    this.response = new Direction(this, 'response', forward.slice().reverse(), init.downstreamSink, init.filters.some(f => f.onResponseData !== undefined))
    this.contexts = init.filters.map((_, index) => this.#context(index, init))
  }

  /** True when no filter looks at request (or response) data: the tunnel may write straight through. */
  get requestDataPassthrough (): boolean { return !this.request.hasData && this.request.queue.length === 0 }
  get responseDataPassthrough (): boolean { return !this.response.hasData && this.response.queue.length === 0 }

  requestHeaders (headers: Headers, endStream: boolean): void {
    this.request.push('headers', 0, headers, EMPTY, endStream)
  }

  requestData (chunk: Buffer, endStream: boolean): boolean {
    return this.request.push('data', 0, undefined, chunk, endStream)
  }

  responseHeaders (statusCode: number, headers: Headers, endStream: boolean): void {
    this.response.push('headers', statusCode, headers, EMPTY, endStream)
  }

  responseData (chunk: Buffer, endStream: boolean): boolean {
    return this.response.push('data', 0, undefined, chunk, endStream)
  }

  /**
   * Runs a local reply's headers and body through the response callbacks of the filters before
   * `fromFilter` (all of them when the router answers), ignoring their statuses: a local reply is final.
   */
  localResponse (fromFilter: number, status: number, headers: Headers, body: Buffer): Buffer {
    this.localReplying = true
    const n = this.filters.length
    const start = fromFilter >= n ? 0 : n - fromFilter
    let chunk = body
    for (let p = start; p < n; p++) {
      const index = this.response.order[p]!
      const filter = this.filters[index]!
      const ctx = this.contexts[index]!
      try {
        filter.onResponseHeaders?.(ctx, status, headers, chunk.length === 0)
        if (chunk.length > 0 && filter.onResponseData !== undefined) {
          this.replacement = undefined
          filter.onResponseData(ctx, chunk, true)
          if (this.replacement !== undefined) chunk = this.replacement
        }
      } catch (err) {
        ctx.log.error({ err, filter: filter.name }, 'filter failed on a local reply')
      }
    }
    this.replacement = undefined
    // A local reply is final: a field a filter broke is dropped, the answer still goes out.
    for (let problem = checkHeaders(headers); problem !== null; problem = checkHeaders(headers)) {
      const err = new SwyInvalidHeaderError(problem.name, 'downstream', problem.reason)
      this.contexts[0]?.log.error({ err, code: err.code }, 'invalid header dropped from a local reply')
      delete headers[problem.key]
    }
    return chunk
  }

  /** Once: every filter's `onClose`. */
  close (error?: Error, reason?: CloseReason): void {
    if (this.closed) return
    this.closed = true
    this.request.queue.length = 0
    this.response.queue.length = 0
    this.request.stopped.clear()
    this.response.stopped.clear()
    for (let i = 0; i < this.filters.length; i++) {
      const filter = this.filters[i]!
      if (filter.onClose === undefined) continue
      try {
        filter.onClose(this.contexts[i]!, error, reason)
      } catch (err) {
        this.contexts[i]!.log.error({ err, filter: filter.name }, 'filter onClose failed')
      }
    }
  }

  fail (filter: Filter, err: unknown): void {
    if (this.closed) return
    const error = new SwyFilterError(filter.name, err instanceof Error ? err.message : String(err))
    error.cause = err
    this.sinkFailed(error)
  }

  /**
   * The stream cannot go on (a filter threw, or its output could not be written): a 500 when no response
   * has started, else a reset (the owner decides which it can still do); the coded error is logged and
   * reaches every filter's `onClose` (the access log).
   */
  sinkFailed (error: Error & { code?: string }): void {
    if (this.closed) return
    this.replied = true
    this.contexts[0]?.log.warn({ err: error, code: error.code }, 'stream ended by its filter chain')
    this.owner.localReply(this.filters.length, 500, undefined, {})
    this.owner.abort(error)
  }

  #context (index: number, init: ChainInit): FilterContext {
    const chain = this
    const n = init.filters.length
    let paused = false
    return {
      upgradeType: init.upgradeType,
      route: init.route,
      request: init.request,
      log: init.log,
      state: this.state,
      get localReply () { return chain.localReplying },
      get responseFlags () { return chain.responseFlags },
      sendLocalReply (status, body, headers) {
        if (chain.replied || chain.closed) return
        chain.replied = true
        const buf = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body)
        chain.owner.localReply(index, status, buf, headers ?? {})
      },
      pause () {
        if (paused) return
        paused = true
        chain.owner.pause()
      },
      resume () {
        if (paused) {
          paused = false
          chain.owner.resume()
        }
        chain.request.resumeFrom(index)
        chain.response.resumeFrom(index)
      },
      abort (error) {
        chain.owner.abort(error ?? new Error(`aborted by filter ${init.filters[index]!.name}`))
      },
      replaceData (chunk) {
        if (!Buffer.isBuffer(chunk)) throw new TypeError('ctx.replaceData takes a Buffer')
        chain.replacement = chunk
      },
      injectRequestData (chunk, endStream = false) {
        if (!Buffer.isBuffer(chunk)) throw new TypeError('ctx.injectRequestData takes a Buffer')
        chain.request.inject(index + 1, chunk, endStream)
      },
      injectResponseData (chunk, endStream = false) {
        if (!Buffer.isBuffer(chunk)) throw new TypeError('ctx.injectResponseData takes a Buffer')
        chain.response.inject(n - index, chunk, endStream)
      }
    }
  }
}
