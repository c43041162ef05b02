/**
 * One cluster of named backends (`lb-backends.ts`) behind Switchyard, in each way a request can cross
 * it, so the cluster-manager tests run every case through each:
 * - `plain`: a plain GET through `proxy` (undici, core's router);
 * - `new style`: a WebSocket upgrade through core's filter chain and HTTP/1.1 transport;
 * - `legacy`: the same upgrade on a `useWebsocket` route (@switchyard/websocket-tcp's raw pipe);
 * - `H1→H2→H1`: the upgrade sent by a front as RFC 8441 extended CONNECT to one sidecar per backend,
 *   each turning it back into an HTTP/1.1 upgrade: the front's cluster is the sidecars, over HTTP/2.
 * The cluster under test is always the front's `up`; the route is `/*` with the given `upstream`.
 */
import { request as httpRequest } from 'node:http'
import type net from 'node:net'
import type { TestContext } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import switchyard, { proxy, type ClusterOptions, type SwitchyardOptions, type UpstreamOptions } from '@switchyard/core'
import { appStateOf, type Cluster } from '@switchyard/core/internal'
import h2Connect from '@switchyard/h2-connect'
import websocketTcp from '@switchyard/websocket-tcp'
import { startNode } from './h2-mesh.ts'
import type { Backend } from './lb-backends.ts'
import { rawClient, wsUpgradeHead, type RawClient } from './raw-client.ts'

export const lbModes = ['plain', 'new style', 'legacy', 'H1→H2→H1'] as const
export type LbMode = typeof lbModes[number]
/** The modes that open a tunnel. */
export const tunnelModes = ['new style', 'legacy', 'H1→H2→H1'] as const satisfies readonly LbMode[]

export interface Answer {
  status: number
  headers: Record<string, string>
  /** The body of a non-101 answer (read to its Content-Length). */
  body: string
  /** `x-backend` of the answer: which endpoint served it (undefined for a local reply). */
  backend: string | undefined
  /** A held tunnel's client (`hold: true` and a 101); otherwise already destroyed. */
  client: RawClient | undefined
}

export interface SendOptions {
  headers?: Record<string, string>
  path?: string
  /** Keep the tunnel open (upgrade modes); the caller closes `answer.client`. */
  hold?: boolean
}

export interface LbProxy {
  mode: LbMode
  port: number
  /** The app clients talk to (its cluster `up` is the one under test). */
  front: FastifyInstance
  /** Every Switchyard app on the path, the front first (for gauges). */
  apps: FastifyInstance[]
  /** The front's cluster `up`, with its events and hosts. */
  cluster: Cluster
  /** The endpoint the front's cluster lists for `backend` (the backend, or the sidecar in front of it). */
  endpointOf (backend: Backend): string
  /** One request in this mode. */
  send (options?: SendOptions): Promise<Answer>
}

export interface LbProxyOptions {
  /** The cluster's options besides its endpoints (`endpoints` given here replaces the backends' list). */
  cluster?: Partial<ClusterOptions>
  /** The route's `upstream`, besides `cluster: 'up'`. */
  upstream?: Omit<UpstreamOptions, 'cluster'>
  /** More core options for the front (filters, more clusters). */
  core?: Partial<SwitchyardOptions>
  /** Endpoint weights by backend name. */
  weights?: Record<string, number>
}

/** Builds `mode` in front of `backends`; `t.after` closes everything. */
export async function startLbProxy (t: TestContext, mode: LbMode, backends: Backend[], options: LbProxyOptions = {}): Promise<LbProxy> {
  const apps: FastifyInstance[] = []
  const endpointOf = new Map<Backend, string>()
  if (mode === 'H1→H2→H1') {
    for (const b of backends) {
      const sidecar = await startNode(t, { listen: 'h2c', upstream: b.address, upstreamProtocol: 'http1' })
      apps.push(sidecar.app)
      endpointOf.set(b, `127.0.0.1:${sidecar.port}`)
    }
  } else {
    for (const b of backends) endpointOf.set(b, b.address)
  }
  const endpoints = backends.map((b) => {
    const weight = options.weights?.[b.name]
    return weight === undefined ? endpointOf.get(b)! : { address: endpointOf.get(b)!, weight }
  })
  const front = Fastify({ forceCloseConnections: true })
  t.after(() => front.close())
  await front.register(switchyard, {
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    ...options.core,
    clusters: {
      ...options.core?.clusters,
      up: { endpoints, ...(mode === 'H1→H2→H1' ? { protocol: 'http2' as const } : {}), ...options.cluster }
    }
  })
  if (mode === 'H1→H2→H1') await front.register(h2Connect)
  if (mode === 'legacy') await front.register(websocketTcp)
  const upstream = { cluster: 'up', ...options.upstream }
  front.get('/*', mode === 'legacy' ? { useWebsocket: true, upstream } : { upstream }, proxy)
  await front.listen({ port: 0, host: '127.0.0.1' })
  apps.unshift(front)
  const port = (front.server.address() as net.AddressInfo).port
  const cluster = appStateOf(front)!.clusters.get('up')!
  return {
    mode,
    port,
    front,
    apps,
    cluster,
    endpointOf: (b) => endpointOf.get(b)!,
    send: (o = {}) => mode === 'plain' ? plainGet(port, o) : upgrade(t, port, o)
  }
}

/** A plain GET on its own connection. */
export function plainGet (port: number, options: SendOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: options.path ?? '/chat', agent: false, headers: options.headers }, (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => {
        const headers: Record<string, string> = {}
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v
        resolve({ status: res.statusCode ?? 0, headers, body, backend: headers['x-backend'], client: undefined })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** A WebSocket upgrade from a raw client; the answer's head (and body, when it is not a 101). */
export async function upgrade (t: TestContext, port: number, options: SendOptions = {}): Promise<Answer> {
  const client = await rawClient(t, port, wsUpgradeHead(options.path ?? '/chat', { Host: 'lb.test', ...options.headers }))
  let head = await client.head()
  let body = ''
  if (head.status !== 101) {
    const length = Number(head.headers['content-length'] ?? 0)
    if (length > 0) head = await client.headAnd(length)
    body = head.rest.toString('latin1')
  }
  const held = options.hold === true && head.status === 101
  if (!held) {
    client.socket.destroy()
    await client.closed
  }
  return { status: head.status, headers: head.headers, body, backend: head.headers['x-backend'], client: held ? client : undefined }
}

/** Sends bytes through a held tunnel and resolves once they come back (the backends echo). */
export async function echoes (client: RawClient, text: string): Promise<boolean> {
  const from = client.received.length
  client.socket.write(text)
  await client.until((d) => d.subarray(from).toString('latin1').includes(text))
  return true
}

/** Runs `n` sends, `concurrency` at a time; resolves with every answer, in order. */
export async function sendMany (lb: LbProxy, n: number, options: (i: number) => SendOptions = () => ({}), concurrency = 8): Promise<Answer[]> {
  const answers: Answer[] = new Array(n)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++
      answers[i] = await lb.send(options(i))
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  return answers
}
