import { haproxyConfig } from '../lib/haproxy-config.ts'
import { missingBinary } from '../lib/binary.ts'
import type { ProxyMode } from './mode.ts'

/** HAProxy (Debian 2.6) as an HTTP/1.1 reverse proxy, one thread: what a user would put in front instead. */
export const mode: ProxyMode = {
  name: 'haproxy-h1',
  description: 'HAProxy, HTTP/1.1 in and out, one thread (`nbthread 1`), tunnel mode after the 101',
  order: 41,
  unavailable: async () => missingBinary('haproxy', 'haproxy'),
  start: async (host, upstream) => {
    const port = await host.freePort()
    const config = haproxyConfig(host.tempDir(), 'haproxy', `bind 127.0.0.1:${port}`, `server app 127.0.0.1:${upstream.port}`)
    return host.spawn('haproxy', ['-f', config, '-db'], port)
  }
}
