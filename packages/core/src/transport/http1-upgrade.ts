import { Readable } from 'node:stream'
import type { Socket } from 'node:net'
import { headersFromRaw, serializeHeaders } from '../headers.js'
import { bodyFraming, parseResponseHead, type BodyFraming } from '../http1/response-head.js'
import { ChunkedScanner } from '../http1/chunked.js'
import { connectEndpoint } from './connect.js'
import type { PendingUpgrade, UpgradeEvents, UpgradeRequest, UpgradeTransport } from './transport.js'

const EMPTY: Buffer = Buffer.alloc(0)

/**
 * HTTP/1.1 upgrade to an endpoint, one fresh connection per upgrade: a connection that answered an
 * upgrade is never reused (Envoy destroys it), so no pool, and no HTTP client either. The head is written
 * exactly as given, in one write (no Content-Length or Transfer-Encoding added: bytes after the head are
 * payload); the answer is read with a small head parser (RFC 9112 §4). Interim 1xx answers are skipped;
 * a 101 that names a protocol hands the socket over with any bytes that followed it; any other answer
 * is given as a response whose body is read by its framing (RFC 9112 §6.3), and the connection is
 * destroyed after it. A CONNECT (forwarded to an endpoint that is itself a proxy) goes the same way,
 * opened by any 2xx (RFC 9110 §9.3.6: the bytes after its head are the tunnel's).
 */
export class Http1UpgradeTransport implements UpgradeTransport {
  open (request: UpgradeRequest, events: UpgradeEvents): PendingUpgrade {
    return new Http1UpgradeAttempt(request, events)
  }
}

class Http1UpgradeAttempt implements PendingUpgrade {
  readonly #events: UpgradeEvents
  readonly #socket: Socket
  readonly #method: string
  #connected = false
  #done = false
  #received: Buffer = EMPTY

  constructor (request: UpgradeRequest, events: UpgradeEvents) {
    this.#events = events
    this.#method = request.method
    const socket = this.#socket = connectEndpoint(request.cluster, request.endpoint, this.#onConnect).socket
    socket.on('data', this.#onData)
    socket.on('end', this.#onEnd)
    socket.on('error', this.#onError)
    socket.on('close', this.#onClose)
    // Written now, sent on connect: one write for the whole head.
    socket.write(`${request.method} ${request.path} HTTP/1.1\r\n${serializeHeaders(request.headers)}\r\n`, 'latin1')
  }

  abort (): void {
    this.#done = true
    this.#socket.destroy()
  }

  #onConnect = (): void => {
    this.#connected = true
  }

  #onData = (chunk: Buffer): void => {
    if (this.#done) return
    let received: Buffer = this.#received.length === 0 ? chunk : Buffer.concat([this.#received, chunk])
    for (;;) {
      let head
      try {
        head = parseResponseHead(received)
      } catch (err) {
        this.#fail(err as Error, 'reset')
        return
      }
      if (head === null) {
        this.#received = received
        return
      }
      const rest = received.subarray(head.length)
      if (head.statusCode >= 100 && head.statusCode < 200 && head.statusCode !== 101) {
        // Interim answers (100, 102, 103) precede the final one, as Node's HTTP client skips them.
        received = rest
        continue
      }
      this.#received = EMPTY
      this.#release()
      this.#done = true
      const headers = headersFromRaw(head.rawHeaders)
      const accepted = this.#method === 'CONNECT'
        ? head.statusCode >= 200 && head.statusCode <= 299
        : head.statusCode === 101 && headers.upgrade !== undefined
      if (accepted) {
        // No reader until the tunnel attaches one: nothing the upstream sends meanwhile is lost.
        this.#socket.pause()
        this.#events.accepted(headers, this.#socket, rest, head.statusCode)
        return
      }
      this.#events.response(head.statusCode, headers, new ResponseBody(this.#socket, bodyFraming(head, this.#method), rest))
      return
    }
  }

  #onEnd = (): void => {
    this.#fail(Object.assign(new Error('the upstream closed the connection before a complete answer'), { code: 'ECONNRESET' }), 'reset')
  }

  #onError = (err: Error): void => {
    this.#fail(err, this.#connected ? 'reset' : 'connect')
  }

  #onClose = (): void => {
    this.#fail(Object.assign(new Error('the upstream connection closed before a complete answer'), { code: 'ECONNRESET' }), this.#connected ? 'reset' : 'connect')
  }

  #fail (err: Error, phase: 'connect' | 'reset'): void {
    if (this.#done) return
    this.#done = true
    this.#release()
    this.#socket.destroy()
    this.#events.failed(err, phase)
  }

  /** Lets go of the socket: from now on it belongs to the tunnel or to the response body. */
  #release (): void {
    const socket = this.#socket
    socket.removeListener('data', this.#onData)
    socket.removeListener('end', this.#onEnd)
    socket.removeListener('error', this.#onError)
    socket.removeListener('close', this.#onClose)
    socket.on('error', noop)
  }
}

/**
 * The body of an answer that is not a 101, read off the upstream socket by its framing (chunked bodies
 * decoded): a Readable that ends with the body and destroys the socket then, never reused. Reading
 * follows the consumer (backpressure).
 */
class ResponseBody extends Readable {
  readonly #socket: Socket
  readonly #framing: BodyFraming
  #left: number
  readonly #chunked: ChunkedScanner | undefined
  #ended = false

  constructor (socket: Socket, framing: BodyFraming, rest: Buffer) {
    super()
    this.#socket = socket
    this.#framing = framing
    this.#left = framing.kind === 'length' ? framing.length : 0
    this.#chunked = framing.kind === 'chunked' ? new ChunkedScanner() : undefined
    if (framing.kind === 'none' || (framing.kind === 'length' && this.#left === 0)) {
      this.#finish()
      return
    }
    socket.on('data', this.#onData)
    socket.once('end', this.#onEnd)
    socket.once('close', this.#onEnd)
    if (rest.length > 0) this.#onData(rest)
  }

  override _read (): void {
    if (!this.#ended) this.#socket.resume()
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy()
    callback(error)
  }

  #onData = (chunk: Buffer): void => {
    if (this.#ended) return
    let more = true
    if (this.#chunked !== undefined) {
      let end: number
      try {
        end = this.#chunked.push(chunk, (payload) => { more = this.push(payload) && more })
      } catch (err) {
        this.destroy(err as Error)
        return
      }
      if (end !== -1) { this.#finish(); return }
    } else if (this.#framing.kind === 'length') {
      const take = Math.min(this.#left, chunk.length)
      this.#left -= take
      more = this.push(take === chunk.length ? chunk : chunk.subarray(0, take))
      if (this.#left === 0) { this.#finish(); return }
    } else {
      more = this.push(chunk)
    }
    if (!more) this.#socket.pause()
  }

  #onEnd = (): void => {
    if (this.#ended) return
    // A close-delimited body ends with the connection; any other framing ended early.
    if (this.#framing.kind === 'close') this.#finish()
    else this.destroy(Object.assign(new Error('the upstream closed the connection inside a response body'), { code: 'ECONNRESET' }))
  }

  #finish (): void {
    this.#ended = true
    this.#socket.removeListener('data', this.#onData)
    this.push(null)
    this.#socket.destroy()
  }
}

function noop (): void {}
