import type { Socket } from 'node:net'

/** The non-WebSocket upgrade type the app speaks. */
export const SHOUT = 'shout'

/**
 * `Upgrade: shout` (RFC 9110 §7.8): a 101, then every byte the client sends comes back upper-cased;
 * the client's half-close is answered with `BYE` and a FIN of our own.
 */
export function acceptShout (socket: Socket, head: Buffer): void {
  socket.on('error', () => socket.destroy())
  socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: shout\r\nconnection: upgrade\r\n\r\n')
  const shout = (chunk: Buffer): void => {
    if (!socket.write(chunk.toString('latin1').toUpperCase(), 'latin1')) {
      socket.pause()
      socket.once('drain', () => socket.resume())
    }
  }
  if (head.length > 0) shout(head)
  socket.on('data', shout)
  socket.on('end', () => socket.end('BYE\n'))
}
