import type { MeshConfig } from './config.ts'
import { startApp } from './app.ts'
import { startTcpEcho } from './tcp-echo.ts'
import { startFront } from './front.ts'
import { startSidecar, type Sidecar } from './sidecar.ts'
import { MeshTotals, throttle } from './stats-feed.ts'
import { startFrontWorkers } from './workers.ts'

export interface MeshOptions {
  /** Where the mesh's lines go: the access log, a front worker's unexpected exit (default: dropped). */
  log?: (line: string) => void
}

export interface Mesh {
  config: MeshConfig
  /** The front's URL: the page, and every route. */
  url: string
  ports: { front: number, sidecar: number, app: number }
  totals: MeshTotals
  /**
   * The drain: fronts refuse new upgrades (503) and give open tunnels `front.shutdownGracePeriod` ms,
   * then close the rest; then the sidecar and the app close.
   */
  close (): Promise<void>
}

/**
 * Starts `[Client] --H1-- [Front] --H2-- [Sidecar --H1-- App]` on loopback: the app, its sidecar, then
 * the front — in this process, or on `config.front.workers` processes (node:cluster) sharing its port.
 */
export async function startMesh (config: MeshConfig, options: MeshOptions = {}): Promise<Mesh> {
  const log = options.log ?? (() => {})
  const totals = new MeshTotals()
  const { host } = config
  const closers: Array<() => Promise<void>> = []
  const closeAll = async (): Promise<void> => {
    for (const close of closers.splice(0).reverse()) await close()
  }
  try {
    const app = await startApp(host, config.app.port)
    closers.push(() => app.app.close())
    const echo = await startTcpEcho(host)
    closers.push(() => echo.close())
    let sidecar: Sidecar | undefined
    const sidecarChanged = throttle(() => { if (sidecar !== undefined) totals.report('sidecar', sidecar.counters()) })
    sidecar = await startSidecar(host, config.sidecar.port, app.port, sidecarChanged, { echoPort: echo.port })
    const sidecarApp = sidecar.app
    closers.push(() => sidecarApp.close())
    totals.report('sidecar', sidecar.counters())

    const ends = { host, sidecarPort: sidecar.port, appPort: app.port }
    let front: { port: number, close (): Promise<void> }
    if (config.front.workers > 1) {
      front = await startFrontWorkers({ config, ...ends, totals, log })
    } else {
      let counters: (() => Record<string, number>) | undefined
      const onChange = throttle(() => { if (counters !== undefined) totals.report('front', counters()) })
      const single = await startFront({ config, sidecarPort: ends.sidecarPort, appPort: ends.appPort, totals, onChange, accessLog: log })
      counters = single.counters
      totals.report('front', counters())
      front = single
    }
    closers.push(() => front.close())
    return {
      config,
      url: `http://${host}:${front.port}`,
      ports: { front: front.port, sidecar: sidecar.port, app: app.port },
      totals,
      close: closeAll
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}
