import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { ignoreHttp10Upgrade, stripH2cUpgrade, upgradeTypeOf } from './headers.js'
import { closeSoon, Http1Downstream } from './downstream.js'
import { writeRefusal } from './refusal.js'
import { normaliseHttp1Target } from './request-target.js'
import { invalidAuthority } from './request-gate.js'
import { kUpgrade } from './symbols.js'
import { parseConnectTarget, type ConnectTarget } from './connect-target.js'
import { SwyConnectBodyError, SwyConnectTargetError } from './errors.js'
import { DRAIN_REFUSED } from './drain-refusals.js'
import type { RouteRegistry } from './route-registry.js'
import type { ConnectionReaper } from './connection-reaper.js'
import type { AppState } from './app-state.js'
import type { UpgradeContext } from './downstream.js'

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

/**
 * The one `'upgrade'` listener of the server. Every upgrade goes through Fastify's router once, so
 * `onRequest`/`preValidation`/`preHandler` hooks run for it as for a plain request. Listeners other
 * plugins added (`@fastify/websocket`, `@fastify/http-proxy`) are taken off the server and offered only
 * the upgrades for routes Switchyard does not own: no socket is ever assigned twice
 * (fastify-http-proxy #314, fastify-websocket #262).
 */
export class UpgradeDispatch {
  readonly #fastify: FastifyInstance
  readonly #core: AppState
  readonly #registry: RouteRegistry
  readonly #reaper: ConnectionReaper
  readonly #foreign: UpgradeListener[] = []
  #server: Server | undefined
  readonly listener: UpgradeListener
  readonly connectListener: UpgradeListener

  constructor (fastify: FastifyInstance, core: AppState, registry: RouteRegistry, reaper: ConnectionReaper) {
    this.#fastify = fastify
    this.#core = core
    this.#registry = registry
    this.#reaper = reaper
    this.listener = (req, socket, head) => this.#onUpgrade(req, socket, head)
    this.connectListener = (req, socket, head) => this.#onConnect(req, socket, head)
  }

  attach (server: Server): void {
    this.#server = server
    server.on('upgrade', this.listener)
    server.on('connect', this.connectListener)
    this.adoptForeign(server)
    // A listener added later (a plugin registered after ready) is adopted on the next tick.
    server.on('newListener', (event: string | symbol, fn: UpgradeListener) => {
      if (event === 'upgrade' && fn !== this.listener) process.nextTick(() => this.adoptForeign(server))
    })
  }

  detach (server: Server): void {
    server.removeListener('upgrade', this.listener)
    server.removeListener('connect', this.connectListener)
  }

  /** Takes every other `'upgrade'` listener off the server; they are called from here instead. */
  adoptForeign (server: Server): void {
    for (const fn of server.listeners('upgrade') as UpgradeListener[]) {
      if (fn === this.listener) continue
      server.removeListener('upgrade', fn)
      this.#foreign.push(fn)
    }
  }

  #onUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node removed its own socket error listener before emitting 'upgrade'.
    socket.on('error', destroyOnError)
    this.#reaper.track(socket)
    if (this.#core.closing) {
      this.#refuseDraining(socket)
      return
    }
    if (req.rawHeaders.length / 2 > this.#core.maxRequestHeaders) {
      writeRefusal(socket, 431)
      return
    }
    // RFC 9112 §3.2: absolute-form routed by its path with its authority as the Host; a bad Host is a 400.
    const targetProblem = normaliseHttp1Target(req)
    if (targetProblem !== null) {
      invalidAuthority(this.#core, req.headers.host, targetProblem)
      writeRefusal(socket, 400)
      return
    }
    const h2c = stripH2cUpgrade(req)
    const http10 = ignoreHttp10Upgrade(req)
    const upgradeType = upgradeTypeOf(req.headers)
    if ((h2c || http10) && upgradeType === null && hasBody(req) && this.#replayAsPlain(req, socket, head)) return

    const owner = this.#registry.ownerOf(req)
    if (owner !== 'switchyard' && this.#foreign.length > 0 && this.#offerForeign(req, socket, head, owner === 'fastify-websocket')) return

    if (upgradeType !== null) {
      // An upgrade carries no HTTP body: what follows the head is payload, so Fastify must not wait for one.
      delete req.headers['content-length']
      delete req.headers['transfer-encoding']
    }
    this.#route(req, socket, upgradeType === null ? undefined : { upgradeType, head })
  }

  /** Hands a request whose socket core owns to Fastify's router; `upgrade` marks it as one. */
  #route (req: IncomingMessage, socket: Duplex, upgrade: { upgradeType: string, head: Buffer, authority?: string } | undefined): void {
    socket.removeListener('error', destroyOnError)
    socket.on('error', noop)
    const res = new ServerResponse(req)
    res.shouldKeepAlive = false
    res.assignSocket(socket as never)
    // Whatever answers here (a hook's 401, a 403, a 404, a relayed non-101) ends the connection.
    res.once('finish', () => closeSoon(socket))
    if (upgrade !== undefined) {
      const ctx: UpgradeContext = { downstream: new Http1Downstream(socket, upgrade.head, res), upgradeType: upgrade.upgradeType }
      if (upgrade.authority !== undefined) ctx.authority = upgrade.authority
      ;(req as IncomingMessage & { [kUpgrade]?: UpgradeContext })[kUpgrade] = ctx
    }
    this.#fastify.routing(req, res)
  }

  /** Node's `'connect'` event: an HTTP/1.1 CONNECT, answered by core unless the application listens too. */
  #onConnect (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const server = this.#server
    const companions = this.#core.companionConnectListeners
    const others = server?.listeners('connect').filter(fn => fn !== this.connectListener) ?? []
    if (others.some(fn => !companions.has(fn))) return
    if (req.httpVersionMajor === 2) {
      // An HTTP/2 CONNECT is @switchyard/h2-connect's; without it, refused as an unconfigured type.
      if (others.length === 0) {
        // Counted as Envoy counts any refused upgrade type.
        this.#core.stats.inc('downstream_rq_ws_on_non_ws_route')
        const res = socket as unknown as ServerResponse
        res.statusCode = 403
        res.end()
      }
      return
    }
    this.routeConnect(req, socket, head)
  }

  /**
   * An HTTP/1.1 CONNECT. Envoy treats it as the upgrade type `CONNECT`, off by default: it is routed through
   * Fastify like an upgrade, on the path `/host:port`, so hooks run and a route's `upgradeConfigs` decide
   * (403 when not enabled, 404 with no route). Without a listener Node would drop the socket unanswered.
   * A target that is not `host:port`, or a CONNECT announcing content, is refused with 400 before routing.
   */
  routeConnect (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroyOnError)
    this.#reaper.track(socket)
    if (this.#core.closing) {
      this.#refuseDraining(socket)
      return
    }
    if (req.rawHeaders.length / 2 > this.#core.maxRequestHeaders) {
      writeRefusal(socket, 431)
      return
    }
    const target = parseConnectTarget(req.url)
    const problem = 'problem' in target
      ? new SwyConnectTargetError(String(req.url).slice(0, 300), target.problem)
      : connectBodyProblem(req, target.authority)
    if (problem !== undefined) {
      this.#core.log.debug({ code: problem.code, target: String(req.url).slice(0, 300) }, problem.message)
      writeRefusal(socket, 400)
      return
    }
    const { authority } = target as ConnectTarget
    // Routed on `/host:port`, so a route may match one authority (`/db.internal:5432`) or every one (`/*`).
    req.url = `/${authority}`
    delete req.headers['content-length']
    this.#route(req, socket, { upgradeType: 'connect', head, authority })
  }

  /** A new upgrade or CONNECT while the server drains: 503, counted (Envoy's drain refuses new streams). */
  #refuseDraining (socket: Duplex): void {
    this.#core.stats.inc(DRAIN_REFUSED)
    writeRefusal(socket, 503)
  }

  /**
   * An h2c upgrade (or an HTTP/1.0 request with `Upgrade`) with a body: Node emitted it as an upgrade, so its
   * body was never parsed. With the upgrade stripped it is a plain request (Envoy serves it as one), so its
   * head is written again without the upgrade headers, put back in front of the unread bytes, and the socket handed back to the HTTP server, which
   * parses the request and its body (and anything after it) as on any keep-alive connection.
   */
  #replayAsPlain (req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const server = this.#server
    if (server === undefined) return false
    let raw = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`
    for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`
    socket.removeListener('error', destroyOnError)
    socket.unshift(Buffer.concat([Buffer.from(raw + '\r\n', 'latin1'), head]))
    server.emit((socket as { encrypted?: boolean }).encrypted === true ? 'secureConnection' : 'connection', socket)
    return true
  }

  /** Routes an upgrade that did not come through the `'upgrade'` event (h2-connect's extended CONNECT). */
  routeUpgrade (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, upgrade: UpgradeContext): void {
    ;(req as unknown as Record<symbol, UpgradeContext>)[kUpgrade] = upgrade
    this.#fastify.routing(req as IncomingMessage, res as ServerResponse)
  }

  /** Hands the upgrade to the first foreign listener that takes the socket. */
  #offerForeign (req: IncomingMessage, socket: Duplex, head: Buffer, websocketRoute: boolean): boolean {
    // @fastify/websocket answers every upgrade it sees; give it only the routes that are its own.
    const candidates = this.#foreign.filter(fn => isFastifyWebsocketListener(fn) === websocketRoute)
    for (const fn of candidates) {
      const before = attachments(socket)
      fn(req, socket, head)
      if (socket.destroyed || attachments(socket) > before) {
        socket.removeListener('error', destroyOnError)
        if (socket.listenerCount('error') === 0) socket.on('error', noop)
        return true
      }
    }
    return false
  }
}

/**
 * True for `@fastify/websocket`'s `'upgrade'` listener. The plugin exposes no reference to it (its
 * decorators are `websocketServer` and `injectWS`), and its listener answers every upgrade it is given
 * (404 or 400 for routes not its own), so it must be told apart from other plugins' listeners: by the
 * name of its function, `onUpgrade` (@fastify/websocket 11). `test/plugin/coexistence.test.ts` fails if a
 * release renames it.
 */
export function isFastifyWebsocketListener (fn: UpgradeListener): boolean {
  return fn.name === 'onUpgrade'
}

/**
 * How many listeners hang on a socket's 'data' and 'close': a listener that takes an upgraded socket
 * attaches to it (`ServerResponse#assignSocket` listens for 'close', ws for 'data'), one that declines
 * leaves it as it was. Public counts, rather than Node's private `_httpMessage`.
 */
function attachments (socket: Duplex): number {
  return socket.listenerCount('data') + socket.listenerCount('close')
}

/** RFC 9110 §9.3.6: a CONNECT has no content; one that announces some (a length, a coding) is refused. */
function connectBodyProblem (req: IncomingMessage, authority: string): (Error & { code: string }) | undefined {
  if (req.headers['transfer-encoding'] !== undefined) return new SwyConnectBodyError(authority, 'Transfer-Encoding')
  const length = req.headers['content-length']
  if (length !== undefined && length !== '0') return new SwyConnectBodyError(authority, `Content-Length ${length.slice(0, 20)}`)
  return undefined
}

function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

function destroyOnError (this: Duplex): void {
  this.destroy()
}

function noop (): void {}
