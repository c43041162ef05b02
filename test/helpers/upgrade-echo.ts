/**
 * An HTTP/1.1 upgrade upstream usable in this process or in a child (test/fixtures/upgrade-echo-server.ts):
 * answers every upgrade with 101 (the requested type; a valid Sec-WebSocket-Accept when a key came, so
 * the HTTP/2 sidecar's key check passes), then echoes every byte and half-closes when the peer does. A
 * plain request (no Upgrade) gets a small 200 once its Content-Length body is in, as an application's would.
 */
import { createHash } from 'node:crypto'
import net from 'node:net'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** The server; `onTunnel` sees each socket once its 101 is written (to reset or kill it in a test). */
export function createUpgradeEchoServer (onTunnel?: (socket: net.Socket) => void): net.Server {
  return net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    const onHead = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.removeListener('data', onHead)
      const head = buf.toString('latin1', 0, end)
      const header = (name: string): string | undefined => new RegExp(`\\r\\n${name}:[ \\t]*([^\\r\\n]*)`, 'i').exec(head)?.[1]?.trim()
      if (header('upgrade') === undefined) {
        answerPlainAfterBody(socket, Number(header('content-length') ?? 0), buf.length - end - 4)
        return
      }
      const key = header('sec-websocket-key')
      const accept = key === undefined ? '' : `Sec-WebSocket-Accept: ${createHash('sha1').update(key + GUID).digest('base64')}\r\n`
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${header('upgrade') ?? 'websocket'}\r\nConnection: Upgrade\r\n${accept}\r\n`)
      const rest = buf.subarray(end + 4)
      if (rest.length > 0) socket.write(rest)
      socket.pipe(socket)
      onTunnel?.(socket)
    }
    socket.on('data', onHead)
  })
}

/** Answers a plain request once `length` body bytes have arrived (`received` came with the head). */
function answerPlainAfterBody (socket: net.Socket, length: number, received: number): void {
  const answer = (): void => { socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok') }
  if (received >= length) { answer(); return }
  const onBody = (chunk: Buffer): void => {
    received += chunk.length
    if (received < length) return
    socket.off('data', onBody)
    answer()
  }
  socket.on('data', onBody)
}
