import type { Duplex } from 'node:stream'
import { connectEndpoint } from './connect.js'
import type { PendingUpgrade, UpgradeEvents, UpgradeRequest, UpgradeTransport } from './transport.js'

const EMPTY = Buffer.alloc(0)

/**
 * A CONNECT terminated here (Envoy's `connect_config`): the connection to the endpoint is the tunnel's
 * upstream, and it being made is the acceptance — the client gets 200 and its bytes flow. Whatever cluster
 * protocol, this is TCP (TLS for an `https://` endpoint); the target the client named plays no part.
 */
export class TcpConnectTransport implements UpgradeTransport {
  open (request: UpgradeRequest, events: UpgradeEvents): PendingUpgrade {
    let done = false
    const onError = (err: Error): void => {
      if (done) return
      done = true
      connection.socket.destroy()
      events.failed(err, connection.connected ? 'reset' : 'connect')
    }
    const connection = connectEndpoint(request.cluster, request.endpoint, () => {
      if (done) return
      done = true
      const socket = connection.socket
      socket.removeListener('error', onError)
      socket.pause()
      events.accepted({}, socket as Duplex, EMPTY, 200)
    })
    connection.socket.on('error', onError)
    return {
      abort () {
        done = true
        connection.socket.destroy()
      }
    }
  }
}
