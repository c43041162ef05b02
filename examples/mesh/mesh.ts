import { appPorts, type MeshConfig } from './config.ts'
import { AppInstances } from './app-instances.ts'
import { startTcpEcho } from './tcp-echo.ts'
import { startFront } from './front.ts'
import { startSidecar, type Sidecar } from './sidecar.ts'
import { MeshTotals, throttle } from './stats-feed.ts'
import { startFrontWorkers } from './workers.ts'
import type { AppAction } from './app-instances.ts'

export interface MeshOptions {
  /** Where the mesh's lines go: the access log, a front worker's unexpected exit (default: dropped). */
  log?: (line: string) => void
}

export interface Mesh {
  config: MeshConfig
  /** The front's URL: the page, and every route. */
  url: string
  /** `app`: the first instance's port; `apps`: every instance's, in order. */
  ports: { front: number, sidecar: number, app: number, apps: number[] }
  /** The app's instances: `list()`, and `act('kill' | 'restart', name)` as the page's buttons do. */
  apps: AppInstances
  totals: MeshTotals
  /**
   * The drain: fronts refuse new upgrades (503) and give open tunnels `front.shutdownGracePeriod` ms,
   * then close the rest; then the sidecar and the app close.
   */
  close (): Promise<void>
}

/**
 * Starts `[Client] --H1-- [Front] --H2-- [Sidecar --H1-- App]` on loopback: the app's instances, their
 * sidecar, then the front — in this process, or on `config.front.workers` processes (node:cluster)
 * sharing its port.
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
    const instances = new AppInstances(host)
    closers.push(() => instances.close())
    await instances.start(appPorts(config))
    const apps = instances.list().map((i) => ({ name: i.name, address: i.address }))
    const echo = await startTcpEcho(host)
    closers.push(() => echo.close())
    let sidecar: Sidecar | undefined
    const sidecarChanged = throttle(() => { if (sidecar !== undefined) totals.report('sidecar', sidecar.counters()) })
    sidecar = await startSidecar(host, config.sidecar.port, apps, config.app.healthCheckInterval, sidecarChanged, { echoPort: echo.port })
    const sidecarApp = sidecar.app
    closers.push(() => sidecarApp.close())
    totals.report('sidecar', sidecar.counters())

    const control = (action: AppAction, name: string): Promise<boolean> => instances.act(action, name)
    let front: { port: number, close (): Promise<void> }
    if (config.front.workers > 1) {
      front = await startFrontWorkers({ config, host, sidecarPort: sidecar.port, apps, control, totals, log })
    } else {
      let counters: (() => Record<string, number>) | undefined
      const onChange = throttle(() => { if (counters !== undefined) totals.report('front', counters()) })
      const single = await startFront({ config, sidecarPort: sidecar.port, apps, control, totals, onChange, accessLog: log })
      counters = single.counters
      totals.report('front', counters())
      front = single
    }
    closers.push(() => front.close())
    const appPortsNow = instances.list().map((i) => i.port)
    return {
      config,
      url: `http://${host}:${front.port}`,
      ports: { front: front.port, sidecar: sidecar.port, app: appPortsNow[0]!, apps: appPortsNow },
      apps: instances,
      totals,
      close: closeAll
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}
