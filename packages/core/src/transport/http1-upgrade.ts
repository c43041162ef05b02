import http from 'node:http'
import type { Duplex } from 'node:stream'
import { headersFromRaw } from '../headers.js'
import { connectEndpoint } from './connect.js'
import { openHttp1Connect } from './http1-connect.js'
import type { PendingUpgrade, UpgradeEvents, UpgradeRequest, UpgradeTransport } from './transport.js'

/**
 * HTTP/1.1 upgrade (or CONNECT, forwarded) to an endpoint, one fresh connection per upgrade: a connection that answered an
 * upgrade is never reused (Envoy destroys it), so no pool. Node's parser reads the answer; the head is
 * written exactly as given (no Content-Length or Transfer-Encoding added: bytes after the head are payload).
 */
export class Http1UpgradeTransport implements UpgradeTransport {
  open (request: UpgradeRequest, events: UpgradeEvents): PendingUpgrade {
    if (request.upgradeType === 'connect') return openHttp1Connect(request, events)
    const { endpoint, cluster } = request
    let done = false
    const connection = connectEndpoint(cluster, endpoint, noop)
    const sock = connection.socket

    const req = http.request({
      method: request.method,
      path: request.path,
      setHost: false,
      headers: request.headers,
      createConnection: () => sock
    })
    // Keep Node from adding framing headers: an upgrade's body is raw payload (Envoy forwards CL as sent).
    if (request.headers['content-length'] === undefined) req.removeHeader('content-length')
    req.removeHeader('transfer-encoding')

    function fail (err: Error, phase: 'connect' | 'reset'): void {
      if (done) return
      done = true
      req.destroy()
      sock.destroy()
      events.failed(err, phase)
    }

    req.on('error', (err) => fail(err, connection.connected ? 'reset' : 'connect'))
    req.on('upgrade', (res, upgraded: Duplex, head: Buffer) => {
      if (done) { upgraded.destroy(); return }
      done = true
      events.accepted(headersFromRaw(res.rawHeaders), upgraded, head)
    })
    req.on('response', (res) => {
      if (done) { res.destroy(); return }
      done = true
      // Never reused: destroyed once the answer is read (or abandoned).
      res.on('end', () => sock.destroy())
      res.on('close', () => sock.destroy())
      events.response(res.statusCode ?? 502, headersFromRaw(res.rawHeaders), res)
    })
    req.flushHeaders()

    return {
      abort () {
        done = true
        req.destroy()
        sock.destroy()
      }
    }
  }
}

function noop (): void {}
