import type { Duplex } from 'node:stream'

/** How long a refused connection may linger for its answer to drain before it is destroyed (ms). */
export const REFUSAL_LINGER = 2000

const reasons: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
}

/**
 * The one way core refuses an HTTP/1.1 connection it owns the socket of (before or outside Fastify):
 * the status line and headers, `connection: close`, an empty body; then the socket is ended, whatever
 * the client sends afterwards is read and discarded (so its FIN is seen and the socket freed), and it is
 * destroyed once the answer is out or after `REFUSAL_LINGER` ms, whichever comes first. A client that
 * keeps sending, or never closes, cannot hold the socket (RFC 9112 §9.6: the server closes after a
 * response with `Connection: close`).
 */
export function writeRefusal (socket: Duplex, status: number, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return
  socket.on('error', noop)
  if (socket.writableEnded) {
    socket.destroy()
    return
  }
  let head = `HTTP/1.1 ${status} ${reasons[status] ?? 'Error'}\r\n`
  for (const key in headers) head += `${key}: ${headers[key]}\r\n`
  head += 'connection: close\r\ncontent-length: 0\r\n\r\n'
  lingerThenDestroy(socket)
  socket.end(head)
}

/**
 * Lets an ending socket flush its last bytes (a lingering close, as nginx's `lingering_close`): anything
 * that still arrives is read and discarded, so the peer's FIN is seen, and the socket is destroyed at that
 * FIN or after `REFUSAL_LINGER` ms, whichever comes first. Destroying it with unread bytes at once would
 * send a RST that can discard the answer before the client reads it; a half-open peer that neither reads
 * nor closes can hold it no longer than the bound.
 */
export function lingerThenDestroy (socket: Duplex): void {
  socket.on('data', noop)
  socket.once('end', () => socket.destroy())
  socket.resume()
  const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}

function noop (): void {}
