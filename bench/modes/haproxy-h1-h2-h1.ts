import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ProxyMode } from './mode.ts'

/** The same H1 → H2 → H1 mesh built from two HAProxy processes (Debian `haproxy` 2.6), when installed. */
export const mode: ProxyMode = {
  name: 'haproxy-h1-h2-h1',
  description: 'HAProxy front (HTTP/1.1 in, `proto h2 ws h2` out) → HAProxy sidecar (HTTP/2 in, HTTP/1.1 out), both measured; websocket only',
  order: 31,
  unavailable: async () => spawnSync('haproxy', ['-v']).error === undefined ? null : 'haproxy is not installed',
  start: async (host, upstream) => {
    const dir = mkdtempSync(join(tmpdir(), 'swy-bench-haproxy-'))
    const sidecarPort = await host.freePort()
    await host.spawn('haproxy', ['-f', config(dir, 'sidecar', `bind 127.0.0.1:${sidecarPort} proto h2`, `server app 127.0.0.1:${upstream.port}`), '-db'], sidecarPort)
    const frontPort = await host.freePort()
    return host.spawn('haproxy', ['-f', config(dir, 'front', `bind 127.0.0.1:${frontPort}`, `server sidecar 127.0.0.1:${sidecarPort} proto h2 ws h2`), '-db'], frontPort)
  }
}

function config (dir: string, name: string, bind: string, server: string): string {
  const file = join(dir, `${name}.cfg`)
  writeFileSync(file, [
    'global', '  maxconn 4000', '  nbthread 1',
    'defaults', '  mode http', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', '  timeout tunnel 60s',
    'frontend fe', `  ${bind}`, '  default_backend be',
    'backend be', `  ${server}`, ''
  ].join('\n'))
  return file
}
