import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'

export interface EchoUpstream {
  port: number
  close (): Promise<void>
}

/** A WebSocket echo server on loopback: every message comes back as it was sent (text or binary). */
export async function startEchoUpstream (host = '127.0.0.1', port = 0): Promise<EchoUpstream> {
  const wss = new WebSocketServer({ host, port })
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  await once(wss, 'listening')
  return {
    port: (wss.address() as AddressInfo).port,
    async close () {
      for (const client of wss.clients) client.terminate()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
    }
  }
}
