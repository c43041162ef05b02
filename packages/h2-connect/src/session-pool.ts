import http2, { type ClientHttp2Session } from 'node:http2'
import type { Cluster, Endpoint, Stats } from '@switchyard/core/internal'

type Ready = (error?: Error) => void

/**
 * One HTTP/2 connection to an endpoint. `slots` counts streams reserved or open on it; it takes new
 * streams until the peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached, and none once it is draining:
 * it received a GOAWAY, closed, or was retired after the peer refused or reset a stream before its
 * response (RFC 9113 §6.8: streams already open may finish).
 */
export class PooledSession {
  readonly session: ClientHttp2Session
  readonly key: string
  readonly clusterName: string
  /** The peer's first SETTINGS arrived (RFC 8441 §3: only then is `:protocol` allowed). */
  settled = false
  draining = false
  slots = 0
  open = 0
  /** `upstream_cx_destroy_remote_with_active_rq` was counted for this connection. */
  countedRemote = false
  #error: Error | undefined
  #waiters: Ready[] = []

  constructor (key: string, clusterName: string, session: ClientHttp2Session) {
    this.key = key
    this.clusterName = clusterName
    this.session = session
  }

  /** Before the peer's SETTINGS its limit is unknown: every stream waits on this session, then the excess moves. */
  get limit (): number {
    return this.settled ? (this.session.remoteSettings.maxConcurrentStreams ?? Infinity) : Infinity
  }

  get usable (): boolean {
    return !this.draining && !this.session.closed && !this.session.destroyed
  }

  whenReady (cb: Ready): void {
    if (this.settled || this.#error !== undefined) cb(this.#error)
    else this.#waiters.push(cb)
  }

  settle (error?: Error): void {
    if (this.settled || this.#error !== undefined) return
    if (error === undefined) this.settled = true
    else this.#error = error
    const waiters = this.#waiters
    this.#waiters = []
    for (const cb of waiters) cb(error)
  }
}

export interface SessionPoolOptions {
  /** ms a session with no stream stays open (the wait for a connection and SETTINGS is the cluster's `connectTimeout`). */
  idleTimeout?: number
  /** Where `upstream_cx_destroy_remote_with_active_rq` is counted, per cluster. */
  stats?: Stats
}

/**
 * HTTP/2 connections per endpoint (h2c prior knowledge for `http://` endpoints, TLS with ALPN `h2` for
 * `https://`, the cluster's `tls` options passed through), many streams each, a new one only when
 * every open one is at the peer's stream limit or draining.
 */
export class SessionPool {
  readonly #sessions = new Map<string, PooledSession[]>()
  readonly #idleTimeout: number
  readonly #stats: Stats | undefined
  #closed = false

  constructor (options: SessionPoolOptions = {}) {
    this.#idleTimeout = options.idleTimeout ?? 60_000
    this.#stats = options.stats
  }

  /** Reserves a stream slot on a session to `endpoint`, opening one when none has room. */
  acquire (cluster: Cluster, endpoint: Endpoint): PooledSession {
    const key = `${cluster.name}|${endpoint.origin}`
    const list = this.#sessions.get(key) ?? []
    this.#sessions.set(key, list)
    let pooled = list.find(p => p.usable && p.slots < p.limit)
    if (pooled === undefined) {
      pooled = this.#connect(key, cluster, endpoint)
      list.push(pooled)
    }
    pooled.slots++
    return pooled
  }

  /** Gives back a slot reserved by `acquire` (its stream closed, or none was opened). */
  release (pooled: PooledSession): void {
    pooled.slots--
    if (pooled.draining && pooled.slots === 0 && !pooled.session.closed) pooled.session.close()
  }

  /**
   * Takes a session out of the pool because its peer refused or reset a stream before answering it
   * (REFUSED_STREAM, ENHANCE_YOUR_CALM, any code): a peer that sheds load or lost track of its memory
   * would refuse every later stream too. Its open streams finish; it closes with the last one (as after
   * a GOAWAY, RFC 9113 §6.8), and new streams go to a fresh connection.
   */
  retire (pooled: PooledSession): void {
    this.#countRemote(pooled)
    pooled.draining = true
    this.#forget(pooled)
    if (pooled.slots === 0 && !pooled.session.closed) pooled.session.close()
  }

  /** Every session at once (app close): open streams on them are reset. */
  close (): void {
    this.#closed = true
    for (const list of this.#sessions.values()) for (const p of list) p.session.destroy()
    this.#sessions.clear()
  }

  /** Sessions currently pooled for `cluster` (for stats and tests). */
  sessionsOf (clusterName: string): PooledSession[] {
    const out: PooledSession[] = []
    for (const [key, list] of this.#sessions) if (key.startsWith(`${clusterName}|`)) out.push(...list)
    return out
  }

  #connect (key: string, cluster: Cluster, endpoint: Endpoint): PooledSession {
    const session = http2.connect(endpoint.origin, {
      ...(endpoint.secure ? { ALPNProtocols: ['h2'], ...cluster.tls } : {}),
      settings: { enablePush: false },
      // 1,000 tunnels and more on one connection: room for their headers and buffered frames.
      maxSessionMemory: 64
    })
    const pooled = new PooledSession(key, cluster.name, session)
    const timer = setTimeout(() => {
      session.destroy(Object.assign(new Error(`no HTTP/2 SETTINGS within ${cluster.connectTimeout}ms`), { code: 'ETIMEDOUT' }))
    }, cluster.connectTimeout)
    session.once('remoteSettings', () => {
      clearTimeout(timer)
      pooled.settle()
    })
    session.on('error', (err) => pooled.settle(err))
    session.on('goaway', () => {
      // RFC 9113 §6.8: no new stream on it; Node lets the open ones finish, then closes it.
      if (pooled.open > 0) this.#countRemote(pooled)
      pooled.draining = true
      this.#forget(pooled)
    })
    session.once('close', () => {
      clearTimeout(timer)
      if (pooled.open > 0 && !this.#closed) this.#countRemote(pooled)
      pooled.draining = true
      pooled.settle(Object.assign(new Error('HTTP/2 connection closed'), { code: 'ECONNRESET' }))
      this.#forget(pooled)
    })
    session.setTimeout(this.#idleTimeout, () => {
      if (pooled.slots === 0) session.close()
    })
    if (this.#closed) session.destroy()
    return pooled
  }

  /** Envoy's `upstream_cx_destroy_remote_with_active_rq`: the peer ended the connection's use with requests on it; once per connection. */
  #countRemote (pooled: PooledSession): void {
    if (pooled.countedRemote) return
    pooled.countedRemote = true
    this.#stats?.cluster(pooled.clusterName, 'upstream_cx_destroy_remote_with_active_rq')
  }

  #forget (pooled: PooledSession): void {
    const list = this.#sessions.get(pooled.key)
    if (list === undefined) return
    const i = list.indexOf(pooled)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.#sessions.delete(pooled.key)
  }
}
