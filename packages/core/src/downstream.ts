import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { headerTokens, serializeHeaders, type Headers } from './headers.js'

/**
 * The client side of an upgrade: an HTTP/1.1 socket here, an HTTP/2 stream in @switchyard/h2-connect.
 * Before `accept`, only a response may be sent; after it, `stream` carries raw payload both ways.
 */
export interface Downstream {
  readonly protocol: 'http1' | 'http2'
  /** Raw bytes from and to the client. */
  readonly stream: Duplex
  /** Bytes the client sent right after its request head (Node's `head`). */
  readonly head: Buffer
  /** True once a status line (101 or other) has been sent. */
  readonly responseStarted: boolean
  /**
   * Sends the acceptance: `101 Switching Protocols` on HTTP/1.1 (200 on HTTP/2); for a CONNECT, its 2xx
   * (`statusCode`: `200 Connection Established`).
   */
  accept (headers: Headers, statusCode?: number): void
  /** Sends a non-upgrade answer's head; the body follows with `write`/`end`, then the connection closes. */
  respond (statusCode: number, headers: Headers): void
  write (chunk: Buffer): boolean
  end (chunk?: Buffer): void
  destroy (error?: Error): void
  /**
   * The tunnel owns `stream` from now on: let go of the HTTP exchange (request and response objects), so
   * an idle tunnel holds its sockets and little else. Called once the payload starts to flow.
   */
  detach (): void
}

/** An upgrade handed to a route: what the upgrade listener (or h2-connect) captured. */
export interface UpgradeContext {
  downstream: Downstream
  upgradeType: string
  /** A CONNECT's target, `host:port` as the client sent it (the request is routed as `/host:port`). */
  authority?: string
}

/** Headers never sent on a 101 (Envoy: no Content-Length/Transfer-Encoding, no chunking after). */
const notOn101 = ['content-length', 'transfer-encoding']
/** RFC 9110 §9.3.6: no Content-Length or Transfer-Encoding on a 2xx to CONNECT; RFC 9110 §7.6.1: no hop-by-hop. */
const notOnConnect = ['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer']

export class Http1Downstream implements Downstream {
  readonly protocol = 'http1' as const
  readonly stream: Duplex
  readonly head: Buffer
  responseStarted = false
  // Dropped by `detach()`: a tunnel does not need its HTTP exchange.
  #res: ServerResponse | undefined

  constructor (socket: Duplex, head: Buffer, res: ServerResponse) {
    this.stream = socket
    this.head = head
    this.#res = res
  }

  accept (headers: Headers, statusCode = 101): void {
    this.responseStarted = true
    this.detach()
    if (statusCode === 101) {
      for (const key of notOn101) delete headers[key]
      this.stream.write(`HTTP/1.1 101 Switching Protocols\r\n${serializeHeaders(headers)}\r\n`)
      return
    }
    for (const key of notOnConnect) delete headers[key]
    const reason = statusCode === 200 ? 'Connection Established' : STATUS_CODES[statusCode] ?? 'Success'
    this.stream.write(`HTTP/1.1 ${statusCode} ${reason}\r\n${serializeHeaders(headers)}\r\n`)
  }

  respond (statusCode: number, headers: Headers): void {
    this.responseStarted = true
    const res = this.#res
    if (res === undefined) { this.stream.destroy(); return }
    // The connection is not kept: nothing after a refused upgrade may be read as a request. Envoy relays
    // copies of the upstream's headers (a 200 keeps its `Connection: upgrade`); without one, say `close`.
    res.shouldKeepAlive = false
    for (const key in headers) {
      if (key === 'keep-alive' || key === 'transfer-encoding') continue
      res.setHeader(key, headers[key]!)
    }
    // A relayed `keep-alive` would tell the client to pipeline onto a connection that is closing (RFC 9112 §9.6).
    if (headers.connection === undefined || headerTokens(headers.connection).includes('keep-alive')) res.setHeader('connection', 'close')
    res.writeHead(statusCode)
    // Node holds a head back until the first body write; the client must see a refused upgrade's status
    // as soon as the upstream sent it, body or not (Envoy relays headers at once).
    res.flushHeaders()
    res.once('finish', () => closeSoon(this.stream))
  }

  write (chunk: Buffer): boolean {
    const res = this.#res
    return this.responseStarted && res !== undefined && res.headersSent ? res.write(chunk) : this.stream.write(chunk)
  }

  end (chunk?: Buffer): void {
    if (this.#res?.headersSent === true) this.#res.end(chunk)
    else {
      if (chunk !== undefined) this.stream.write(chunk)
      this.stream.end()
    }
  }

  destroy (error?: Error): void {
    this.stream.destroy(error)
  }

  detach (): void {
    const res = this.#res
    if (res === undefined) return
    this.#res = undefined
    // Until detached, the socket names the response as its current message and keeps it alive.
    res.detachSocket(this.stream as never)
  }
}

/** Ends a socket and destroys it once its pending writes are out (net's `destroySoon`). */
export function closeSoon (stream: Duplex): void {
  if (stream.destroyed) return
  if (stream.writableFinished) { stream.destroy(); return }
  stream.once('finish', () => stream.destroy())
  stream.end()
}
