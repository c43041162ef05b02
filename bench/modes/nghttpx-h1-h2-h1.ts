import { join } from 'node:path'
import { missingBinary } from '../lib/binary.ts'
import type { ProxyMode } from './mode.ts'

/**
 * The H1 → H2 → H1 mesh built from two nghttpx processes (Debian `nghttp2-proxy` 1.52): a front with an
 * HTTP/2 backend (`proto=h2`, RFC 8441 extended CONNECT for WebSocket) → a sidecar (h2c in, HTTP/1.1
 * out) → the echo upstream. Each one process, one thread; no configuration file, no access log.
 */
export const mode: ProxyMode = {
  name: 'nghttpx-h1-h2-h1',
  description: 'nghttpx front (HTTP/1.1 in, `proto=h2` backend) → nghttpx sidecar (h2c in, HTTP/1.1 out), one process and thread each, both measured; websocket only',
  order: 32,
  unavailable: async () => missingBinary('nghttpx', 'nghttp2-proxy', ['--version']),
  start: async (host, upstream) => {
    const dir = host.tempDir()
    const sidecarPort = await host.freePort()
    await host.spawn('nghttpx', args(dir, 'sidecar', sidecarPort, `127.0.0.1,${upstream.port}`), sidecarPort)
    const frontPort = await host.freePort()
    return host.spawn('nghttpx', args(dir, 'front', frontPort, `127.0.0.1,${sidecarPort};;proto=h2`), frontPort)
  }
}

function args (dir: string, name: string, port: number, backend: string): string[] {
  return [
    '--conf=/dev/null',
    `--frontend=127.0.0.1,${port};no-tls`,
    `--backend=${backend}`,
    '--single-process',
    '--single-thread',
    '--workers=1',
    `--pid-file=${join(dir, `${name}.pid`)}`,
    `--errorlog-file=${join(dir, `${name}.log`)}`,
    // An idle upgraded tunnel is not a stalled request: the bench holds 1,000 of them for a while.
    '--frontend-read-timeout=1h',
    '--backend-read-timeout=1h',
    '--frontend-keep-alive-timeout=1h'
  ]
}
