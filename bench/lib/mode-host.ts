import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Endpoint, ListenOptions, ModeHost } from '../modes/mode.ts'
import { ExternalProcess, NodeChild, type MeasuredProcess } from './processes.ts'

const PROXY_CHILD = fileURLToPath(new URL('./proxy-child.ts', import.meta.url))
/** Extra Node flags for proxy processes only, e.g. `--cpu-prof --cpu-prof-dir=results/prof` to profile what is measured. */
const PROXY_NODE_ARGS = (process.env.BENCH_PROXY_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')

/** The ModeHost one mode runs with: it remembers every process the mode starts, to measure and to stop them. */
export class ProcessModeHost implements ModeHost {
  readonly processes: MeasuredProcess[] = []

  async fork (moduleUrl: string, exportName: string, options: ListenOptions): Promise<Endpoint> {
    const name = `${moduleUrl.slice(moduleUrl.lastIndexOf('/') + 1)}#${exportName}`
    const child = await NodeChild.start(name, PROXY_CHILD, [moduleUrl, exportName, JSON.stringify(options)], PROXY_NODE_ARGS)
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

  /** Stops the processes in reverse start order (the front before what it proxies to). */
  async stopAll (): Promise<void> {
    for (const proc of this.processes.splice(0).reverse()) await proc.stop()
  }
}
