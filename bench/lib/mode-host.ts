import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Endpoint, ListenOptions, ModeHost } from '../modes/mode.ts'
import { ExternalProcess, NodeChild, type MeasuredProcess } from './processes.ts'

const PROXY_CHILD = fileURLToPath(new URL('./proxy-child.ts', import.meta.url))
/** Extra Node flags for proxy processes only, e.g. `--cpu-prof --cpu-prof-dir=results/prof` to profile what is measured. */
const PROXY_NODE_ARGS = (process.env.BENCH_PROXY_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')

/** How proxy processes are started; bench/profile.ts adds Node flags and captures their stdout. */
export interface ProxyLaunch { nodeArgs: string[], stdoutFile?: string }

/** The ModeHost one mode runs with: it remembers every process the mode starts, to measure and to stop them. */
export class ProcessModeHost implements ModeHost {
  readonly processes: MeasuredProcess[] = []
  readonly #upstream: NodeChild
  readonly #launch: ProxyLaunch
  readonly #dirs: string[] = []

  constructor (upstream: NodeChild, launch: ProxyLaunch = { nodeArgs: PROXY_NODE_ARGS }) {
    this.#upstream = upstream
    this.#launch = launch
  }

  async fork (moduleUrl: string, exportName: string, options: ListenOptions): Promise<Endpoint> {
    const name = `${moduleUrl.slice(moduleUrl.lastIndexOf('/') + 1)}#${exportName}`
    const child = await NodeChild.start(name, PROXY_CHILD, [moduleUrl, exportName, JSON.stringify(options)], this.#launch)
    this.processes.push(child)
    return { host: '127.0.0.1', port: child.port }
  }

  async spawn (command: string, args: string[], port: number): Promise<Endpoint> {
    const proc = await ExternalProcess.start(command, command, args, port)
    this.processes.push(proc)
    return { host: '127.0.0.1', port }
  }

  freePort (): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer()
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo
        server.close(() => resolve(port))
      })
    })
  }

  async upstreams (count: number): Promise<Endpoint[]> {
    const ports = await this.#upstream.call<number[]>('listenMore', { count })
    return ports.map((port) => ({ host: '127.0.0.1', port }))
  }

  tempDir (): string {
    const dir = mkdtempSync(join(tmpdir(), 'swy-bench-'))
    this.#dirs.push(dir)
    return dir
  }

  /** The Node processes of this mode (the ones that can answer `info` and take heap snapshots). */
  nodeChildren (): NodeChild[] {
    return this.processes.filter((p): p is NodeChild => p instanceof NodeChild)
  }

  /** Stops the processes in reverse start order (the front before what it proxies to), and removes the temp dirs. */
  async stopAll (): Promise<void> {
    for (const proc of this.processes.splice(0).reverse()) await proc.stop()
    for (const dir of this.#dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  }
}
