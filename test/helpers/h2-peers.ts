/**
 * Real HTTP/2 peers for the h2-connect tests: HAProxy (Debian `haproxy`) and nghttpx (Debian
 * `nghttp2-proxy`), each started with a configuration written to a temp dir, on a free 127.0.0.1 port,
 * and killed in `t.after`. Readiness is the line each prints once it listens. A test checks
 * `havePeers(t, 'haproxy')` (helpers/peers.ts) before it starts one.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { freePort } from './net.ts'
import { peerPath } from './peers.ts'

/** Runs `command`, resolves once its output matches `ready`; `t.after` kills it and removes `dir`. */
async function runPeer (t: TestContext, command: 'haproxy' | 'nghttpx', args: string[], ready: RegExp, dir: string): Promise<{ output: () => string }> {
  const child = spawn(peerPath(command), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      if (ready.test(output)) resolve()
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code} before it was ready:\n${output}`)))
  })
  return { output: () => output }
}

/**
 * Resolves once `port` accepts a connection. A peer's ready line can come a moment before its socket
 * listens (seen with HAProxy on a loaded machine); a refused attempt is retried at once, for up to 10 s.
 */
async function accepting (port: number): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const socket = net.connect(port, '127.0.0.1')
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true))
      socket.once('error', () => resolve(false))
    })
    socket.destroy()
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing accepts connections on 127.0.0.1:${port}`)
  }
}

export interface PeerOptions {
  /** `h1-in-h2-out`: HTTP/1.1 listener, extended CONNECT to an HTTP/2 backend; `h2-in-h1-out`: the reverse. */
  shape: 'h1-in-h2-out' | 'h2-in-h1-out'
  backendPort: number
  /** nghttpx only: forward-proxy mode (`--http2-proxy`), in which it passes a plain CONNECT on to its backend. */
  forwardProxy?: boolean
}

/** HAProxy 2.6 in one of the two positions of the mesh. Resolves with its listening port. */
export async function startHaproxy (t: TestContext, options: PeerOptions): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'swy-haproxy-'))
  const port = await freePort()
  const bind = options.shape === 'h2-in-h1-out' ? `bind 127.0.0.1:${port} proto h2` : `bind 127.0.0.1:${port}`
  const server = options.shape === 'h2-in-h1-out'
    ? `server app 127.0.0.1:${options.backendPort}`
    : `server sidecar 127.0.0.1:${options.backendPort} proto h2 ws h2`
  const config = join(dir, 'haproxy.cfg')
  writeFileSync(config, [
    'global',
    '  maxconn 2000',
    'defaults',
    '  mode http',
    '  timeout connect 5s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout tunnel 30s',
    'frontend fe',
    `  ${bind}`,
    '  default_backend be',
    'backend be',
    `  ${server}`,
    ''
  ].join('\n'))
  // -V prints the poller line after the listeners are bound.
  await runPeer(t, 'haproxy', ['-f', config, '-db', '-V'], /Using \w+\(\) as the polling mechanism/, dir)
  await accepting(port)
  return port
}

/** nghttpx 1.52 in one of the two positions of the mesh (cleartext: h2c prior knowledge in). */
export async function startNghttpx (t: TestContext, options: PeerOptions): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'swy-nghttpx-'))
  const port = await freePort()
  const config = join(dir, 'nghttpx.conf')
  writeFileSync(config, '')
  const proto = options.shape === 'h2-in-h1-out' ? 'http/1.1' : 'h2'
  await runPeer(t, 'nghttpx', [
    `--conf=${config}`,
    `--frontend=127.0.0.1,${port};no-tls`,
    `--backend=127.0.0.1,${options.backendPort};;proto=${proto}`,
    ...(options.forwardProxy === true ? ['--http2-proxy'] : []),
    '--single-process',
    '--workers=1',
    '--errorlog-file=/dev/stderr',
    `--pid-file=${join(dir, 'nghttpx.pid')}`
  ], /Listening on 127\.0\.0\.1:\d+/, dir)
  await accepting(port)
  return port
}
