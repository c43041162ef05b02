import { createServer } from 'node:net'
import { appPorts, type MeshConfig } from './config.ts'

/**
 * The embedded default's fixed ports, each one that is taken replaced by 0 (any free port), with
 * `onBusy` told. Ports from a config file are kept: a busy one is then an error, as asked.
 */
export async function withFreePorts (config: MeshConfig, onBusy: (node: string, port: number) => void): Promise<MeshConfig> {
  const next = structuredClone(config)
  for (const node of ['front', 'sidecar', 'app'] as const) {
    // The app's instances take consecutive ports: one busy, they all move to free ones.
    const ports = node === 'app' ? appPorts(config) : [config[node].port]
    const busy = []
    for (const port of ports) if (port !== 0 && !await isFree(config.host, port)) busy.push(port)
    if (busy.length === 0) continue
    onBusy(node, busy[0]!)
    next[node].port = 0
  }
  return next
}

function isFree (host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)))
  })
}
