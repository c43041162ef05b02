import http from 'node:http'
import { Duplex } from 'node:stream'

/**
 * Node's own HTTP/1.1 response parser, run over bytes handed to it rather than over a socket it owns: a
 * `ClientRequest` on a Duplex that swallows the request head Node writes and reads what `feed` delivers.
 * For a CONNECT it reports the head through `'connect'` (body bytes left unparsed: they are the tunnel);
 * for `GET` through `'response'`, its body framed by Content-Length, chunked coding or the close, exactly
 * as on any response. `onFull`/`onRead` carry the parser's backpressure to the real source.
 */
export interface ResponseParser {
  readonly request: http.ClientRequest
  /** Bytes from the upstream, in order. False: the parser wants no more for now (pause the source). */
  feed (chunk: Buffer): boolean
  /** The upstream ended its side. */
  end (): void
  destroy (): void
}

export function responseParser (method: 'CONNECT' | 'GET', onRead: () => void = noop): ResponseParser {
  const socket = new Duplex({
    read: onRead,
    write (_chunk, _encoding, callback) { callback() }
  })
  const request = http.request({ method, path: method === 'CONNECT' ? 'parser:1' : '/', createConnection: () => socket as never })
  request.on('error', noop)
  request.end()
  return {
    request,
    feed: (chunk) => socket.push(chunk),
    end: () => { socket.push(null) },
    destroy: () => { request.destroy(); socket.destroy() }
  }
}

function noop (): void {}
