import type { FastifyBaseLogger } from 'fastify'
import type { PendingUpgrade, UpgradeEvents, UpgradeRequest, UpgradeTransport } from '@switchyard/core/internal'
import { acceptFor, type GeneratedKeys } from './websocket-key.js'
import { SwyH2WebsocketAcceptError } from './errors.js'

/**
 * Wraps core's HTTP/1.1 upgrade transport for WebSockets that arrived over HTTP/2 without a key: the key
 * the downstream listener generated goes upstream, and the 101 must carry its `Sec-WebSocket-Accept`
 * (502 when it is missing or wrong, as Envoy answers), which is stripped before the 200 goes down
 * (RFC 8441 §5: the accept does not cross an HTTP/2 hop). Any other upgrade passes straight through.
 */
export class KeyCheckingTransport implements UpgradeTransport {
  readonly #inner: UpgradeTransport
  readonly #keys: GeneratedKeys
  readonly #log: FastifyBaseLogger

  constructor (inner: UpgradeTransport, keys: GeneratedKeys, log: FastifyBaseLogger) {
    this.#inner = inner
    this.#keys = keys
    this.#log = log
  }

  open (request: UpgradeRequest, events: UpgradeEvents): PendingUpgrade {
    const key = request.headers['sec-websocket-key']
    if (request.upgradeType !== 'websocket' || !this.#keys.has(key)) return this.#inner.open(request, events)
    const expected = acceptFor(key)
    return this.#inner.open(request, {
      ...events,
      accepted: (headers, socket, head) => {
        const accept = headers['sec-websocket-accept']
        if (accept === expected) {
          delete headers['sec-websocket-accept']
          events.accepted(headers, socket, head)
          return
        }
        socket.destroy()
        const err = new SwyH2WebsocketAcceptError(request.cluster.name, accept === undefined ? 'no' : 'a wrong')
        this.#log.warn({ err, code: err.code, endpoint: request.endpoint.authority }, 'websocket handshake invalid accept')
        events.failed(err, 'protocol')
      }
    })
  }

  close (): void {
    this.#inner.close?.()
  }
}
