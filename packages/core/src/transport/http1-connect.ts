import { Readable, type Duplex } from 'node:stream'
import { headersFromRaw, serializeHeaders } from '../headers.js'
import { connectEndpoint } from './connect.js'
import { responseParser } from './response-parser.js'
import type { PendingUpgrade, UpgradeEvents, UpgradeRequest } from './transport.js'

/**
 * A CONNECT forwarded to an endpoint that is itself a proxy (Envoy without `connect_config`), on a fresh
 * connection: `CONNECT <host:port> HTTP/1.1` and the headers exactly as given, nothing added. Any 2xx
 * opens the tunnel (RFC 9110 §9.3.6: bytes after its head are the tunnel's); any other answer is relayed
 * as an ordinary response, its body framed as HTTP/1.1 frames it, and the connection is never reused.
 */
export function openHttp1Connect (request: UpgradeRequest, events: UpgradeEvents): PendingUpgrade {
  let done = false
  const head = `CONNECT ${request.path} HTTP/1.1\r\n${serializeHeaders(request.headers)}\r\n`
  const connection = connectEndpoint(request.cluster, request.endpoint, () => { if (!done) sock.write(head) })
  const sock = connection.socket
  // Everything received until the head is whole, to parse it again as a response with a body if needed.
  const seen: Buffer[] = []
  const parser = responseParser('CONNECT')

  const fail = (err: Error, phase: 'connect' | 'reset'): void => {
    if (done) return
    done = true
    parser.destroy()
    sock.destroy()
    events.failed(err, phase)
  }
  const onData = (chunk: Buffer): void => {
    seen.push(chunk)
    parser.feed(chunk)
  }
  const onEnd = (): void => parser.end()
  const onClose = (): void => fail(Object.assign(new Error('the upstream closed before answering the CONNECT'), { code: 'ECONNRESET' }), connection.connected ? 'reset' : 'connect')
  sock.on('data', onData)
  sock.on('end', onEnd)
  sock.on('error', (err) => fail(err, connection.connected ? 'reset' : 'connect'))
  sock.on('close', onClose)
  parser.request.on('error', (err) => fail(err, 'reset'))
  parser.request.on('connect', (res, _parserSocket, rest: Buffer) => {
    if (done) return
    done = true
    // Whatever comes next is read by the tunnel or by the body's parser.
    sock.pause()
    sock.removeListener('data', onData)
    sock.removeListener('end', onEnd)
    sock.removeListener('close', onClose)
    sock.on('error', noop)
    const status = res.statusCode ?? 502
    const headers = headersFromRaw(res.rawHeaders)
    parser.destroy()
    if (status >= 200 && status <= 299) {
      events.accepted(headers, sock as Duplex, rest, status)
      return
    }
    events.response(status, headers, relayBody(Buffer.concat(seen), sock))
  })
  return {
    abort () {
      done = true
      parser.destroy()
      sock.destroy()
    }
  }
}

/** The body of a refused CONNECT: the bytes seen so far and the rest of `sock`, framed by Node's parser. */
function relayBody (received: Buffer, sock: Duplex): Readable {
  const parser = responseParser('GET', () => sock.resume())
  const onData = (chunk: Buffer): void => { if (!parser.feed(chunk)) sock.pause() }
  sock.on('data', onData)
  sock.once('end', () => parser.end())
  sock.once('close', () => parser.end())
  let body: Readable | undefined
  const out = new PassThroughBody(() => { body?.destroy(); parser.destroy(); sock.destroy() })
  parser.request.once('response', (res) => {
    body = res
    res.on('data', (chunk: Buffer) => { if (!out.push(chunk)) res.pause() })
    res.once('end', () => { out.push(null); sock.destroy() })
    res.on('error', (err) => out.destroy(err))
    out.onRead = () => res.resume()
  })
  parser.request.once('error', (err) => out.destroy(err))
  parser.feed(received)
  sock.resume()
  return out
}

/** A Readable fed by `relayBody`; reading asks the response for more; destroying it lets the connection go. */
class PassThroughBody extends Readable {
  onRead: () => void = noop
  readonly #onDestroy: () => void
  constructor (onDestroy: () => void) {
    super()
    this.#onDestroy = onDestroy
  }

  override _read (): void { this.onRead() }
  override _destroy (err: Error | null, callback: (err: Error | null) => void): void {
    this.#onDestroy()
    callback(err)
  }
}

function noop (): void {}
