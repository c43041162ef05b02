import { constants, type ServerHttp2Stream } from 'node:http2'
import type { Duplex } from 'node:stream'
import type { Downstream, Headers } from '@switchyard/core/internal'
import { toHttp2Response } from './connect-headers.js'

const EMPTY = Buffer.alloc(0)

/**
 * The client side of an upgrade that arrived as an RFC 8441 extended CONNECT: the HTTP/2 stream is the
 * tunnel's downstream (a Duplex: flow control is the backpressure, END_STREAM the half-close,
 * RST_STREAM the reset). The acceptance is `200` (Envoy: 101 → 200), any other answer keeps its status.
 */
export class Http2Downstream implements Downstream {
  readonly protocol = 'http2' as const
  readonly stream: ServerHttp2Stream & Duplex
  readonly head = EMPTY
  responseStarted = false
  /** True once the 200 went out: the stream is a tunnel, its END_STREAM a half-close. */
  accepted = false

  constructor (stream: ServerHttp2Stream) {
    this.stream = stream
  }

  /** The 101 (sent as 200, RFC 8441), or a CONNECT's 2xx (RFC 9113 §8.5): the stream is a tunnel from here on. */
  accept (headers: Headers, statusCode = 101): void {
    this.responseStarted = true
    this.accepted = true
    if (this.stream.destroyed || this.stream.headersSent) return
    if (statusCode !== 101) {
      // RFC 9110 §9.3.6: no Content-Length or Transfer-Encoding on a 2xx to CONNECT.
      delete headers['content-length']
      delete headers['transfer-encoding']
    }
    this.stream.respond(toHttp2Response(statusCode, headers))
  }

  respond (statusCode: number, headers: Headers): void {
    this.responseStarted = true
    if (this.stream.destroyed || this.stream.headersSent) return
    this.stream.respond(toHttp2Response(statusCode, headers))
  }

  write (chunk: Buffer): boolean {
    if (this.stream.writableEnded || this.stream.destroyed) return true
    return this.stream.write(chunk)
  }

  /**
   * Ends the answer; a client still sending is then told to stop (RFC 9113 §8.1: RST_STREAM NO_ERROR,
   * which Node sends only once the answer's last DATA frame is out).
   */
  end (chunk?: Buffer): void {
    const stream = this.stream
    if (stream.destroyed) return
    if (!stream.writableEnded) stream.end(chunk)
    stopClient(stream)
  }

  destroy (error?: Error): void {
    if (this.stream.destroyed) return
    this.stream.close(error === undefined ? constants.NGHTTP2_CANCEL : constants.NGHTTP2_INTERNAL_ERROR)
  }

  /** Nothing to let go: the stream is the whole exchange on HTTP/2. */
  detach (): void {}
}

/** After a complete answer that is not a tunnel: RST_STREAM NO_ERROR if the client has not ended its side. */
export function stopClient (stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR)
}
