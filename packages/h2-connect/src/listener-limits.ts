import { constants, type Http2SecureServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { FastifyBaseLogger } from 'fastify'
import type { Stats } from '@switchyard/core/internal'
import { STREAM_ALLOWANCE, STREAM_BUDGET } from './plugin-options.js'

/**
 * Envoy's premature-reset rule (CVE-2023-44487, `overload.premature_reset_*` defaults): a stream the
 * client resets within a second and before any answer is premature; a connection is sent away once
 * half its first 500 streams, or more than half of all its streams, were.
 */
const PREMATURE_LIFETIME_MS = 1000
const PREMATURE_TOTAL = 500

/** Node counts the session's socket read buffer and HPACK tables too: kept free of the streams' share. */
const SESSION_OVERHEAD = 256 * 1024

export interface ListenerLimitsOptions {
  maxConcurrentStreams: number
  /** Megabytes, as Node's `maxSessionMemory`. */
  maxSessionMemory: number
  stats: Stats
  log: FastifyBaseLogger
}

interface Tally {
  closed: number
  premature: number
  /** Bytes still queued in Node for streams that are gone (see `#watch`). */
  dropped: number
  live: Set<ServerHttp2Stream>
  retired: boolean
}

/**
 * Limits on every session the HTTP/2 server accepts, whatever its streams carry (extended CONNECT
 * tunnels and the plain requests Fastify serves alike): the concurrent streams it advertises, a GOAWAY
 * ENHANCE_YOUR_CALM when its client resets streams faster than it lets them complete (rapid reset), and a
 * graceful GOAWAY before Node's session memory count would make it refuse every new stream.
 */
export class ListenerLimits {
  readonly #server: Http2Server | Http2SecureServer
  readonly #options: ListenerLimitsOptions
  readonly #budget: number
  readonly #onSession = (session: ServerHttp2Session): void => this.#watch(session)

  constructor (server: Http2Server | Http2SecureServer, options: ListenerLimitsOptions) {
    this.#server = server
    this.#options = options
    // Node reads `maxSessionMemory` as megabytes of 1,000,000 bytes.
    this.#budget = options.maxSessionMemory * 1e6
  }

  attach (): void {
    // RFC 9113 §6.5.2, in the SETTINGS of every session accepted from now on (the plugin registers before listen).
    this.#server.updateSettings({ maxConcurrentStreams: this.#options.maxConcurrentStreams })
    this.#server.on('session', this.#onSession)
  }

  detach (): void {
    this.#server.removeListener('session', this.#onSession)
  }

  #watch (session: ServerHttp2Session): void {
    const tally: Tally = { closed: 0, premature: 0, dropped: 0, live: new Set(), retired: false }
    session.on('stream', (stream: ServerHttp2Stream) => {
      const opened = performance.now()
      tally.live.add(stream)
      stream.once('close', () => {
        tally.live.delete(stream)
        if (tally.retired) return
        tally.closed++
        // A reset stream's queue toward the peer is dropped by Node 20 without being taken off the
        // session's memory count: it stays counted until the session ends.
        const queued = stream.writableLength
        if (queued > 0) {
          tally.dropped += queued
          this.#checkMemory(session, tally)
        }
        const reset = stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR
        if (reset && !stream.headersSent && performance.now() - opened <= PREMATURE_LIFETIME_MS) {
          tally.premature++
          this.#checkResets(session, tally)
        }
      })
    })
  }

  #checkResets (session: ServerHttp2Session, tally: Tally): void {
    const tooMany = tally.closed < PREMATURE_TOTAL
      ? tally.premature >= PREMATURE_TOTAL / 2
      : tally.premature * 2 > tally.closed
    if (!tooMany) return
    tally.retired = true
    this.#options.stats.inc('downstream_rq_too_many_premature_resets')
    this.#options.log.warn({ premature: tally.premature, streams: tally.closed }, 'HTTP/2 client resets streams faster than it completes them: GOAWAY ENHANCE_YOUR_CALM')
    // As Envoy and nginx: the connection goes, with a GOAWAY saying why (RFC 9113 §5.4.1).
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM)
    session.destroy()
  }

  /**
   * Sends the session away gracefully (GOAWAY NO_ERROR: its open streams finish, the client opens a new
   * connection) once what Node counts for it, dropped queues included, would leave no room for one more
   * stream: Node would otherwise refuse every new stream with ENHANCE_YOUR_CALM until the session ends.
   */
  #checkMemory (session: ServerHttp2Session, tally: Tally): void {
    let used = SESSION_OVERHEAD + tally.dropped
    for (const stream of tally.live) used += stream.writableLength + STREAM_ALLOWANCE
    if (used + STREAM_BUDGET <= this.#budget) return
    tally.retired = true
    this.#options.stats.inc('downstream_cx_drain_close')
    this.#options.log.info({ dropped: tally.dropped, budget: this.#budget }, 'HTTP/2 session memory spent on reset streams: GOAWAY, new streams on a new connection')
    if (!session.closed && !session.destroyed) session.close()
  }
}
