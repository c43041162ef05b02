import net from 'node:net'

/**
 * The app side's TCP echo: not HTTP at all, what a CONNECT tunnel reaches. The front forwards CONNECT over
 * the HTTP/2 hop; the sidecar terminates it (`connectConfig`) with a TCP connection here. Every byte comes
 * back; a half-close is answered with one.
 */
export async function startTcpEcho (host: string): Promise<{ port: number, close (): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.on('error', () => socket.destroy())
    socket.once('close', () => sockets.delete(socket))
    socket.pipe(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    async close () {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
