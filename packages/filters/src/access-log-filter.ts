import type { Filter, FilterContext } from '@switchyard/core'
import { websocketMessagesKey, type WebSocketMessageCounts } from './websocket-frame-limit-filter.js'

/** Anything with pino's `info(object, message)`: a pino logger, Fastify's `app.log`. */
export interface AccessLogger {
  info (obj: object, msg?: string): void
}

export interface AccessLogOptions {
  /** Where lines go (default: the request's own logger, `ctx.log`). */
  logger?: AccessLogger
  /** The line's message (default `access`). */
  message?: string
}

/** Who ended a stream: a peer's end of stream, the proxy (a local reply, an abort, a timeout), or a reset peer. */
export type ClosedBy = 'downstream' | 'upstream' | 'proxy' | 'peer' | 'unknown'

/** One access-log line, written once per stream when it closes. */
export interface AccessLogLine {
  method: string
  path: string
  /** Lower-case upgrade type, or null for a plain request. */
  upgradeType: string | null
  /** The status sent downstream (101 for a tunnel), or null if none was. */
  status: number | null
  /** Bytes received from the downstream through the chain (request body or upgraded payload). */
  bytesFromDownstream: number
  /** Bytes sent toward the downstream through the chain (response body or upgraded payload). */
  bytesFromUpstream: number
  durationMs: number
  closedBy: ClosedBy
  /** `end` (a half-close), `complete` (a plain response finished), `local_reply`, or the error's code. */
  reason: string
  /** Envoy's `%RESPONSE_FLAGS%` when the proxy answered itself: `UH`, `UO`, `UF`, `UC`, `UT` or `UPE`. */
  responseFlags?: string
  /** With the WebSocket frame-limit filter in the same chain: messages each way. */
  websocketMessages?: WebSocketMessageCounts
}

interface Record {
  start: number
  status: number | null
  bytesIn: number
  bytesOut: number
  closedBy: ClosedBy | undefined
  reason: string | undefined
}

/**
 * Writes one line per stream (plain request or upgrade) at its close: method, path, upgrade type,
 * status, bytes each way, duration, and who closed it and why (Envoy's access log with
 * `%DOWNSTREAM_...%`/`%RESPONSE_CODE_DETAILS%`-like fields). It counts bytes in data callbacks, so a
 * tunnel through it runs through the chain: the honest cost of counting.
 */
export function createAccessLogFilter (options: AccessLogOptions = {}): Filter {
  const kRecord = Symbol('switchyard.accessLog')
  const message = options.message ?? 'access'
  const recordOf = (ctx: FilterContext): Record | undefined => ctx.state[kRecord] as Record | undefined
  const ended = (rec: Record, by: ClosedBy, reason: string): void => {
    if (rec.closedBy === undefined) { rec.closedBy = by; rec.reason = reason }
  }

  return {
    name: 'access-log',
    onRequestHeaders (ctx) {
      ctx.state[kRecord] = { start: performance.now(), status: null, bytesIn: 0, bytesOut: 0, closedBy: undefined, reason: undefined } satisfies Record
    },
    onRequestData (ctx, chunk, endStream) {
      const rec = recordOf(ctx)
      if (rec === undefined) return
      rec.bytesIn += chunk.length
      // A plain request's body ends by design; an upgrade's request side ends when the client half-closes.
      if (endStream && ctx.upgradeType !== null) ended(rec, 'downstream', 'end')
    },
    onResponseHeaders (ctx, status, _headers, endStream) {
      const rec = recordOf(ctx)
      if (rec === undefined) return
      rec.status = status
      // A local reply is the proxy's answer, body or not.
      if (endStream || ctx.localReply) ended(rec, 'proxy', 'local_reply')
    },
    onResponseData (ctx, chunk, endStream) {
      const rec = recordOf(ctx)
      if (rec === undefined) return
      rec.bytesOut += chunk.length
      if (endStream) ended(rec, 'upstream', ctx.upgradeType === null ? 'complete' : 'end')
    },
    onClose (ctx, error, closeReason) {
      const rec = recordOf(ctx)
      if (rec === undefined) return
      const code = (error as (Error & { code?: string }) | undefined)?.code
      // Core says who ended the stream; the first end seen in the data decides for graceful closes.
      if (closeReason === 'idle_timeout') ended(rec, 'proxy', 'idle_timeout')
      if (error !== undefined && rec.closedBy === undefined) {
        const by: ClosedBy = closeReason === 'downstream' || closeReason === 'upstream'
          ? closeReason
          : closeReason === undefined && code !== undefined && !code.startsWith('SWY_ERR') ? 'peer' : 'proxy'
        ended(rec, by, code ?? error.message)
      }
      if (closeReason !== undefined && rec.closedBy === undefined) {
        ended(rec, closeReason === 'downstream' || closeReason === 'upstream' ? closeReason : 'proxy', 'closed')
      }
      const line: AccessLogLine = {
        method: ctx.request.method,
        path: ctx.request.url,
        upgradeType: ctx.upgradeType,
        status: rec.status,
        bytesFromDownstream: rec.bytesIn,
        bytesFromUpstream: rec.bytesOut,
        durationMs: Math.round((performance.now() - rec.start) * 1000) / 1000,
        closedBy: rec.closedBy ?? 'unknown',
        reason: rec.reason ?? 'closed'
      }
      const flags = ctx.responseFlags
      if (flags !== undefined && flags !== '-') line.responseFlags = flags
      const counts = ctx.state[websocketMessagesKey] as WebSocketMessageCounts | undefined
      if (counts !== undefined) line.websocketMessages = { ...counts }
      ;(options.logger ?? ctx.log).info(line, message)
    }
  }
}
