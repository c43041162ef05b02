import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import { http2AuthorityProblem, INVALID_AUTHORITY_STAT, normaliseHttp1Target } from './request-target.js'
import type { AppState } from './app-state.js'
import { SwyInvalidAuthorityError } from './errors.js'

type Request = IncomingMessage | Http2ServerRequest
type Response = ServerResponse | Http2ServerResponse
type RequestListener = (this: Server, req: Request, res: Response) => void

/** On a socket whose request was refused: it closes after the answer, and nothing after it is served. */
const kRefused = Symbol('switchyard.refusedConnection')

/**
 * The front door of plain requests, as the `'upgrade'` listener is for upgrades: the server's
 * `'request'` listeners (Fastify's) are taken off it and called from here once the request target has
 * been checked, so a request is normalised before Fastify routes it and a refused one never reaches
 * Fastify, a hook or an upstream. HTTP/1.x: absolute-form becomes origin-form with its authority as the
 * Host; more than one Host, or an invalid one, is answered 400 and the connection closed. HTTP/2: an
 * invalid `:authority` or `host` resets the stream with PROTOCOL_ERROR (RFC 9113 §8.1.1).
 */
export class RequestGate {
  readonly #app: AppState
  readonly #listeners: RequestListener[] = []
  readonly listener: RequestListener

  constructor (app: AppState) {
    this.#app = app
    const gate = this
    this.listener = function requestGate (this: Server, req: Request, res: Response): void { gate.#onRequest(this, req, res) }
  }

  /** Puts the gate in front of every `'request'` listener the server has now. */
  attach (server: Server): void {
    for (const fn of server.listeners('request') as RequestListener[]) {
      if (fn === this.listener) continue
      server.removeListener('request', fn)
      this.#listeners.push(fn)
    }
    if (!server.listeners('request').includes(this.listener)) server.on('request', this.listener)
  }

  /** Gives the server its listeners back. */
  detach (server: Server): void {
    server.removeListener('request', this.listener)
    for (const fn of this.#listeners.splice(0)) server.on('request', fn)
  }

  #onRequest (server: Server, req: Request, res: Response): void {
    if (req.httpVersionMajor === 2) {
      const problem = http2AuthorityProblem(req.headers)
      if (problem !== null) {
        invalidAuthority(this.#app, req.headers[':authority'] ?? req.headers.host, problem)
        const stream = (req as Http2ServerRequest).stream
        if (!stream.destroyed) stream.close(constants.NGHTTP2_PROTOCOL_ERROR)
        return
      }
    } else {
      const socket = (req as IncomingMessage).socket as Socket & { [kRefused]?: true }
      // A request pipelined behind a refused one is never served: the connection closes after the 400.
      if (socket[kRefused] === true) return
      const problem = normaliseHttp1Target(req as IncomingMessage)
      if (problem !== null) {
        invalidAuthority(this.#app, req.headers.host, problem)
        socket[kRefused] = true
        const r = res as ServerResponse
        r.shouldKeepAlive = false
        r.writeHead(400, { connection: 'close', 'content-length': '0' })
        r.end()
        return
      }
    }
    for (const fn of this.#listeners) fn.call(server, req, res)
  }
}

/** Logs and counts a request refused for its authority (`downstream_rq_invalid_authority`); returns the coded error. */
export function invalidAuthority (app: AppState, value: string | string[] | undefined, problem: string): Error {
  const err = new SwyInvalidAuthorityError(JSON.stringify(typeof value === 'string' ? value.slice(0, 64) : value ?? ''), problem)
  app.stats.inc(INVALID_AUTHORITY_STAT)
  app.log.debug({ code: err.code }, err.message)
  return err
}
