import Type, { type Static } from 'typebox'
import { compileCheck } from '@switchyard/core/internal'

/** RFC 9113 §6.5.2: SETTINGS_MAX_CONCURRENT_STREAMS is a 31-bit stream count. */
const MAX_STREAMS = 2 ** 31 - 1

/** Options of `@switchyard/h2-connect`: the single source of their checks and their types. */
export const H2ConnectOptionsSchema = Type.Object({
  /**
   * Carry the original method across HTTP/2 hops (`x-switchyard-original-method`) and restore it on the
   * far side, so a POST upgrade stays a POST. Needs `true` on both ends. Default `false`: Envoy's
   * documented flaw, the method is `GET` after the downgrade.
   */
  preserveMethod: Type.Optional(Type.Boolean()),
  /**
   * SETTINGS_MAX_CONCURRENT_STREAMS of every session the HTTP/2 server accepts (its own streams and the
   * plain requests Fastify serves on it). Default 100, as HAProxy (nginx uses 128).
   */
  maxConcurrentStreams: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_STREAMS })),
  /**
   * Megabytes of the session memory budget each accepted session is kept under (Node's
   * `maxSessionMemory`). Default: one flow-control window plus headers per allowed stream, at least 10
   * (Node's own default). Above 10, give the HTTP/2 server the same `maxSessionMemory` (README).
   */
  maxSessionMemory: Type.Optional(Type.Number({ exclusiveMinimum: 0 }))
}, { additionalProperties: false })

export type H2ConnectOptions = Static<typeof H2ConnectOptionsSchema>

export const checkH2ConnectOptions = compileCheck(H2ConnectOptionsSchema)

export const DEFAULT_MAX_CONCURRENT_STREAMS = 100

/** Node's default `maxSessionMemory`, in megabytes. */
export const NODE_SESSION_MEMORY_MB = 10

/** What a stream's headers and write buffer may add to its session's memory count. */
export const STREAM_ALLOWANCE = 32 * 1024

/**
 * What one stream may keep counted against its session: a full window of data queued toward the peer
 * (RFC 9113 §6.9.2's initial 65,535 bytes) and its allowance.
 */
export const STREAM_BUDGET = 65_535 + STREAM_ALLOWANCE

/** The default `maxSessionMemory` (MB) for `streams` concurrent streams: at least Node's 10. */
export function defaultSessionMemory (streams: number): number {
  return Math.max(NODE_SESSION_MEMORY_MB, Math.ceil(streams * STREAM_BUDGET / 1e6))
}
