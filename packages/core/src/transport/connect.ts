import net from 'node:net'
import tls from 'node:tls'
import type { Endpoint } from '../cluster/endpoint.js'
import type { Cluster } from '../cluster/cluster.js'

/** `connect` when no connection could be made; `reset` when an open one broke. */
export type ConnectFailurePhase = 'connect' | 'reset'

export interface EndpointConnection {
  readonly socket: net.Socket
  /** True once the TCP (and TLS) handshake completed. */
  readonly connected: boolean
}

/**
 * A fresh TCP (or TLS, ALPN `http/1.1`) connection to an endpoint for an upgrade or a legacy pipe:
 * half-open (a client's FIN is carried, not answered), no Nagle, and failed with `ETIMEDOUT` when the
 * handshake does not complete within the cluster's `connectTimeout` (Envoy `connect_timeout`).
 * `onConnect` runs once connected; errors are the caller's to listen for.
 */
export function connectEndpoint (cluster: Cluster, endpoint: Endpoint, onConnect: () => void): EndpointConnection {
  let socket: net.Socket
  if (endpoint.secure) {
    socket = tls.connect({
      host: endpoint.host,
      port: endpoint.port,
      servername: net.isIP(endpoint.host) === 0 ? endpoint.host : undefined,
      ALPNProtocols: ['http/1.1'],
      ...cluster.tls,
      // Half-close must carry through the tunnel (not in tls' typings, honoured by net.Socket).
      ...{ allowHalfOpen: true }
    } as tls.ConnectionOptions)
  } else {
    socket = net.connect({ host: endpoint.host, port: endpoint.port, allowHalfOpen: true, noDelay: true })
  }
  const state = { socket, connected: false }
  const onConnectTimeout = (): void => {
    if (!state.connected) socket.destroy(Object.assign(new Error(`connect timeout after ${cluster.connectTimeout}ms`), { code: 'ETIMEDOUT' }))
  }
  socket.setTimeout(cluster.connectTimeout, onConnectTimeout)
  socket.once(endpoint.secure ? 'secureConnect' : 'connect', () => {
    state.connected = true
    // With the listener too: a 'timeout' listener left behind would keep the caller's objects alive with the tunnel.
    socket.setTimeout(0, onConnectTimeout)
    onConnect()
  })
  return state
}
