import { haproxyConfig } from '../lib/haproxy-config.ts'
import { missingBinary } from '../lib/binary.ts'
import type { ProxyMode } from './mode.ts'

/** The same H1 → H2 → H1 mesh built from two HAProxy processes (Debian `haproxy` 2.6), when installed. */
export const mode: ProxyMode = {
  name: 'haproxy-h1-h2-h1',
  description: 'HAProxy front (HTTP/1.1 in, `proto h2 ws h2` out) → HAProxy sidecar (HTTP/2 in, HTTP/1.1 out), one thread each, both measured; websocket only',
  order: 31,
  unavailable: async () => missingBinary('haproxy', 'haproxy'),
  start: async (host, upstream) => {
    const dir = host.tempDir()
    const sidecarPort = await host.freePort()
    await host.spawn('haproxy', ['-f', haproxyConfig(dir, 'sidecar', `bind 127.0.0.1:${sidecarPort} proto h2`, `server app 127.0.0.1:${upstream.port}`), '-db'], sidecarPort)
    const frontPort = await host.freePort()
    return host.spawn('haproxy', ['-f', haproxyConfig(dir, 'front', `bind 127.0.0.1:${frontPort}`, `server sidecar 127.0.0.1:${sidecarPort} proto h2 ws h2`), '-db'], frontPort)
  }
}
