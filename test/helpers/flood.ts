/**
 * Backpressure measurement: finds the proxy's own sockets (the downstream one through the server's
 * 'connection' event, the upstream one through Node's `net.client.socket` diagnostics channel) so a test
 * can count the bytes held inside the proxy process: read from one side and not yet handed to the kernel
 * on the other.
 */
import diagnostics from 'node:diagnostics_channel'
import type net from 'node:net'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'

export interface ProxySockets {
  /** The proxy's socket to the client (the last connection the server accepted). */
  downstream (): net.Socket
  /** The proxy's socket to the upstream listening on `port`. */
  upstream (port: number): net.Socket
}

export function watchProxySockets (t: TestContext, app: FastifyInstance): ProxySockets {
  const clients: net.Socket[] = []
  const accepted: net.Socket[] = []
  const onClient = (message: unknown): void => { clients.push((message as { socket: net.Socket }).socket) }
  diagnostics.subscribe('net.client.socket', onClient)
  t.after(() => diagnostics.unsubscribe('net.client.socket', onClient))
  app.server.on('connection', (s: net.Socket) => accepted.push(s))
  return {
    downstream () {
      const s = accepted.at(-1)
      if (s === undefined) throw new Error('the proxy accepted no connection')
      return s
    },
    upstream (port: number) {
      const s = clients.find((c) => c.remotePort === port)
      if (s === undefined) throw new Error(`the proxy opened no connection to port ${port}`)
      return s
    }
  }
}

/** Bytes `from` has read that `to` has not yet flushed to the kernel: what the proxy holds in memory. */
export function heldBetween (from: net.Socket, to: net.Socket): number {
  return from.bytesRead - (to.bytesWritten - to.writableLength)
}

export interface FloodResult {
  /** Bytes the kernel accepted from the flooding socket when the flood stopped. */
  sent: number
  /** Bytes passed to `write()` (some may still wait in the socket's buffer). */
  written: number
  /** True when the flood stopped because the writer could not drain (it did not send everything). */
  stalled: boolean
}

/**
 * Writes `total` bytes of 64 KiB chunks to `socket` as fast as it drains. Resolves once everything is
 * written, or once the path is full: `socket` cannot drain while `proxySource` (the proxy's socket
 * reading from it) is paused — every buffer on the way then holds what it may, and only the proxy
 * resuming could move a byte. Both are events (`write` returning false, the source's 'pause'), so no
 * timer decides. `onDrain` runs at each drain and at the end, to sample measurements.
 */
export function flood (socket: net.Socket, total: number, onDrain: () => void, proxySource: net.Socket): Promise<FloodResult> {
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  let written = 0
  return new Promise((resolve) => {
    const finish = (stalled: boolean): void => {
      socket.removeListener('drain', pump)
      proxySource.removeListener('pause', onPause)
      onDrain()
      resolve({ sent: socket.bytesWritten - socket.writableLength, written, stalled })
    }
    function onPause (): void {
      if (socket.writableNeedDrain) finish(true)
    }
    function pump (): void {
      onDrain()
      while (written < total) {
        written += chunk.length
        if (!socket.write(chunk)) {
          if (proxySource.isPaused()) finish(true)
          return
        }
      }
      finish(false)
    }
    socket.on('drain', pump)
    proxySource.on('pause', onPause)
    pump()
  })
}
