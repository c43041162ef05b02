import { constants, type ClientHttp2Stream } from 'node:http2'
import type { FastifyBaseLogger } from 'fastify'
import type { PendingUpgrade, Stats, UpgradeEvents, UpgradeRequest, UpgradeTransport } from '@switchyard/core/internal'
import { acceptedAsUpgrade, METHOD_CARRIER, plainHeaders, toExtendedConnect, toPlainConnect } from './connect-headers.js'
import { SessionPool, type PooledSession } from './session-pool.js'
import { acceptFor, type GeneratedKeys } from './websocket-key.js'
import { SwyH2ConnectProtocolDisabledError, SwyH2RequestHeaderError, SwyH2SessionError } from './errors.js'

const EMPTY = Buffer.alloc(0)

/**
 * Reset codes by which a peer refuses a stream it has not processed, so it is safe to send again
 * (RFC 9113 §8.7: REFUSED_STREAM, and streams beyond a GOAWAY's last id; Node's server answers
 * ENHANCE_YOUR_CALM to a stream it refuses for its session memory).
 */
const REFUSALS = new Set<number>([constants.NGHTTP2_REFUSED_STREAM, constants.NGHTTP2_ENHANCE_YOUR_CALM])

/** Node's synchronous refusals of a header set (`session.request()`), as opposed to a session that went away. */
const HEADER_ERROR = /^ERR_(HTTP2_HEADER_SINGLE_VALUE|HTTP2_INVALID_HEADER_VALUE|HTTP2_INVALID_CONNECTION_HEADERS|HTTP2_INVALID_PSEUDOHEADER|INVALID_HTTP_TOKEN|INVALID_CHAR)$/

export interface Http2ConnectTransportOptions {
  log: FastifyBaseLogger
  /** Where `upstream_rq_retry` and `upstream_cx_destroy_remote_with_active_rq` are counted, per cluster. */
  stats?: Stats
  /** Carry a non-GET method across the hop in `x-switchyard-original-method`. */
  preserveMethod: boolean
  keys: GeneratedKeys
}

/**
 * The upstream transport of `protocol: 'http2'` clusters: an upgrade becomes an RFC 8441 extended
 * CONNECT stream on a pooled HTTP/2 connection (Envoy's H2 hop). A 200 is the acceptance (shaped as a
 * 101 for core); any other status is relayed untouched and no tunnel opens.
 */
export class Http2ConnectTransport implements UpgradeTransport {
  readonly pool: SessionPool
  readonly #log: FastifyBaseLogger
  readonly #stats: Stats | undefined
  readonly #preserveMethod: boolean
  readonly #keys: GeneratedKeys

  constructor (options: Http2ConnectTransportOptions) {
    this.pool = new SessionPool({ stats: options.stats })
    this.#log = options.log
    this.#stats = options.stats
    this.#preserveMethod = options.preserveMethod
    this.#keys = options.keys
  }

  open (request: UpgradeRequest, events: UpgradeEvents): PendingUpgrade {
    const { cluster, endpoint, upgradeType } = request
    // A CONNECT goes as a plain HTTP/2 CONNECT (RFC 9113 §8.5), which needs no SETTINGS_ENABLE_CONNECT_PROTOCOL.
    const plain = upgradeType === 'connect'
    // `:protocol` is the client's Upgrade value as sent (Envoy); core matched it case-insensitively.
    const sent = typeof request.headers.upgrade === 'string' ? request.headers.upgrade.trim() : undefined
    const protocol = sent !== undefined && sent.toLowerCase() === upgradeType ? sent : upgradeType
    const headers = plain
      ? toPlainConnect(request.headers, request.path)
      : toExtendedConnect(request.headers, { upgradeType: protocol, path: request.path, secure: endpoint.secure, authority: endpoint.authority })
    const method = request.method.toUpperCase()
    if (this.#preserveMethod && !plain && method !== 'GET') headers[METHOD_CARRIER] = method
    // RFC 8441 §5: no Sec-WebSocket-Key on the HTTP/2 hop (nghttpx refuses one with 400). An HTTP/1.1
    // client's key is answered here, on the 101; a key generated for an RFC 8441 client is just dropped.
    const key = headers['sec-websocket-key']
    const clientKey = upgradeType === 'websocket' && typeof key === 'string' && !this.#keys.has(key) ? key : undefined
    if (upgradeType === 'websocket') delete headers['sec-websocket-key']

    let done = false
    let stream: ClientHttp2Stream | undefined
    let retried = false

    const finish = (): boolean => {
      if (done) return false
      done = true
      return true
    }
    const fail = (error: Error, phase: 'connect' | 'reset'): void => {
      if (finish()) events.failed(error, phase)
    }

    const attempt = (): void => {
      const lease = this.pool.acquire(cluster, endpoint)
      lease.whenReady((error) => {
        if (done) { this.pool.release(lease); return }
        if (error !== undefined) {
          this.pool.release(lease)
          fail(new SwyH2SessionError(cluster.name, endpoint.authority, error.message), 'connect')
          return
        }
        // RFC 8441 §3: no `:protocol` unless the peer sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (Node does not check).
        if (!plain && lease.session.remoteSettings.enableConnectProtocol !== true) {
          this.pool.release(lease)
          const err = new SwyH2ConnectProtocolDisabledError(cluster.name, endpoint.authority)
          this.#log.warn({ err, code: err.code }, 'upstream does not accept extended CONNECT')
          if (finish()) events.failed(err, 'protocol')
          return
        }
        if (lease.open >= lease.limit) {
          // The peer's SETTINGS allow fewer streams than were waiting: this one goes to another connection.
          this.pool.release(lease)
          attempt()
          return
        }
        startStream(lease)
      })
    }

    const startStream = (lease: PooledSession): void => {
      let s: ClientHttp2Stream
      try {
        s = lease.session.request(headers, { endStream: false })
      } catch (err) {
        this.pool.release(lease)
        // Node refused a header of the request itself: the client's fault (400), whatever the session.
        if (HEADER_ERROR.test((err as { code?: string }).code ?? '')) {
          if (finish()) events.failed(new SwyH2RequestHeaderError(cluster.name, (err as Error).message), 'protocol')
          return
        }
        // The session closed between SETTINGS and now (GOAWAY, loss): a fresh one, once.
        if (!retried) { retried = true; attempt(); return }
        fail(new SwyH2SessionError(cluster.name, endpoint.authority, (err as Error).message), 'reset')
        return
      }
      stream = s
      lease.open++
      s.on('error', noop)
      let answered = false
      s.once('close', () => {
        lease.open--
        const code = s.rstCode ?? constants.NGHTTP2_NO_ERROR
        // Refused or reset by the peer before its answer: the session takes no new stream (Envoy drains a
        // connection its peer misbehaves on); the ones open on it finish.
        if (!done && !answered && code !== constants.NGHTTP2_NO_ERROR) this.pool.retire(lease)
        this.pool.release(lease)
        if (done) return
        // A refused stream never reached the app: sent once more, on a fresh connection.
        if (REFUSALS.has(code) && !retried) {
          retried = true
          stream = undefined
          this.#stats?.cluster(cluster.name, 'upstream_rq_retry')
          attempt()
          return
        }
        fail(s.errored ?? new Error(`HTTP/2 stream closed before an answer (code ${s.rstCode ?? '?'})`), 'reset')
      })
      s.once('response', (resHeaders) => {
        answered = true
        if (!finish()) { s.close(constants.NGHTTP2_CANCEL); return }
        const status = Number(resHeaders[':status'])
        if (plain && status >= 200 && status <= 299) {
          // RFC 9113 §8.5: any 2xx opens the tunnel; DATA frames carry its bytes.
          events.accepted(plainHeaders(resHeaders), s, EMPTY, status)
          return
        }
        if (!plain && status === 200) {
          const h1 = acceptedAsUpgrade(resHeaders, protocol)
          // The accept answers the client's own key, whatever the peer added (HAProxy answers a key of its own).
          if (upgradeType === 'websocket') delete h1['sec-websocket-accept']
          if (clientKey !== undefined) h1['sec-websocket-accept'] = acceptFor(clientKey)
          events.accepted(h1, s, EMPTY)
          return
        }
        // Not accepted: relayed as an ordinary response; nothing of the client's is sent on this stream.
        s.end()
        events.response(status, plainHeaders(resHeaders), s)
      })
    }

    attempt()
    return {
      abort: () => {
        done = true
        if (stream !== undefined && !stream.destroyed) stream.close(constants.NGHTTP2_CANCEL)
      }
    }
  }

  close (): void {
    this.pool.close()
  }
}

function noop (): void {}
