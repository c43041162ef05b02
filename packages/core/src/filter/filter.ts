import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Headers } from '../headers.js'

/**
 * What a filter callback tells the chain (Envoy `envoy/http/filter.h`, reduced to two statuses).
 * `void` means Continue; a synchronous answer is the fast path.
 */
export const FilterStatus = {
  /** Pass the headers or data on to the next filter. */
  Continue: 'continue',
  /**
   * Headers callback: iteration parks at this filter; nothing later in the chain (nor the router) sees the
   * headers, and data arriving meanwhile queues behind them, until this filter calls `ctx.resume()`.
   * Data callback: the chunk stops at this filter; later data still reaches it. The chain keeps every chunk
   * the filter stopped until either the filter calls `ctx.resume()`, which sends them on from the next
   * filter in order (Envoy's `continueDecoding` after StopIterationAndBuffer), or it returns Continue for a
   * later chunk, which means it took them (held, dropped, or replaced them via `ctx.replaceData`). A
   * `resume()` inside a data callback takes effect as it returns: with StopIteration this chunk goes on
   * behind the others; with Continue the others were taken.
   */
  StopIteration: 'stop'
} as const
export type FilterStatus = typeof FilterStatus[keyof typeof FilterStatus]

/** A callback's answer. A Promise parks iteration at the filter until it settles; a rejection aborts the stream (500). */
export type FilterResult = FilterStatus | void | Promise<FilterStatus | void>

/** Per-stream context given to every callback. Each filter gets its own view, bound to its place in the chain. */
export interface FilterContext {
  /** The lower-cased upgrade type (`websocket`, `foo`), or null for a plain request. */
  readonly upgradeType: string | null
  /** The matched Fastify route. */
  readonly route: { readonly url: string, readonly method: string | string[] }
  /** The Fastify request (method, url, headers as received, ip, params). */
  readonly request: FastifyRequest
  readonly log: FastifyBaseLogger
  /** Per-stream state shared by the filters of this stream. */
  readonly state: Record<string | symbol, unknown>
  /**
   * True once a local reply (a filter's `sendLocalReply`, or the router's own 403/5xx) runs through the
   * response callbacks: the answer is the proxy's, not the upstream's (Envoy's local-reply response flag).
   */
  readonly localReply: boolean
  /**
   * Envoy's `%RESPONSE_FLAGS%` for this stream: `-`, or why the proxy answered itself — `UH` (no healthy
   * upstream), `UO` (circuit breaker overflow), `UF` (connection failure), `UC` (connection termination),
   * `UT` (route timeout), `UPE` (an upstream answer that could not be used).
   */
  readonly responseFlags: string
  /**
   * Answers the downstream locally and ends the stream: nothing more reaches the upstream. Before the
   * response has started, `status`/`headers`/`body` are sent (through the response callbacks of the filters
   * before this one) with `Connection: close`; after it has started (e.g. inside a tunnel) the stream is
   * closed instead. Envoy `sendLocalReply`.
   */
  sendLocalReply (status: number, body?: string | Buffer, headers?: Record<string, string>): void
  /** Stops reading from both peers (backpressure held by this filter) until `resume()`. */
  pause (): void
  /**
   * Undoes `pause()` and continues iteration this filter stopped with StopIteration: parked headers go on,
   * then the data chunks it stopped, in order. Envoy `continueDecoding`.
   */
  resume (): void
  /** Ends the stream at once: the downstream and upstream are reset. */
  abort (error?: Error): void
  /**
   * Inside a data callback, called synchronously: the chunk passed on to the next filter instead of the
   * one received. Called later (e.g. after an await) it is ignored; inject data instead.
   */
  replaceData (chunk: Buffer): void
  /**
   * Sends bytes on toward the upstream, through the request filters after this one, behind anything
   * already queued (Envoy `injectDecodedDataToFilterChain`). `endStream` half-closes that side.
   */
  injectRequestData (chunk: Buffer, endStream?: boolean): void
  /** Sends bytes on toward the downstream, through the response filters after this one (Envoy `injectEncodedDataToFilterChain`). */
  injectResponseData (chunk: Buffer, endStream?: boolean): void
}

/**
 * A filter: a plain object of optional callbacks. Request callbacks run in chain order, response callbacks
 * in reverse (Envoy decoder/encoder filters). The router is always last and implicit.
 */
export interface Filter {
  readonly name: string
  /** Request headers, mutable in place. `endStream` is false for an upgrade (its payload follows). */
  onRequestHeaders? (ctx: FilterContext, headers: Headers, endStream: boolean): FilterResult
  /** A request body chunk, or any upgraded byte from the downstream. `endStream` marks the half-close. */
  onRequestData? (ctx: FilterContext, chunk: Buffer, endStream: boolean): FilterResult
  /** Response status and headers (the 101 included), mutable in place. */
  onResponseHeaders? (ctx: FilterContext, statusCode: number, headers: Headers, endStream: boolean): FilterResult
  /** A response body chunk, or any upgraded byte from the upstream. */
  onResponseData? (ctx: FilterContext, chunk: Buffer, endStream: boolean): FilterResult
  /**
   * Once, when the stream ends; `error` when it ended abnormally; `reason` says who ended it: the
   * downstream or upstream peer, the idle timeout, or the proxy itself (`destroyed`: a local reply,
   * a filter abort, shutdown).
   */
  onClose? (ctx: FilterContext, error?: Error, reason?: CloseReason): void
}

/** Who ended a stream (the tunnel's close reason). */
export type CloseReason = 'downstream' | 'upstream' | 'idle_timeout' | 'destroyed'
