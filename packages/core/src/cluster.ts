// Compatibility shim: the cluster manager lives in `cluster/`. Until the router calls
// `cluster/cluster.ts`'s `chooseHost`, current callers keep the fixed round-robin view they were written
// for (`endpoints` as an array, `pick()`); delete this file once they have moved.
import type { ClusterOptions } from './plugin-options.js'
import { parseEndpoint, type Endpoint } from './cluster/endpoint.js'

export { parseEndpoint, type Endpoint } from './cluster/endpoint.js'

/** A named upstream: endpoints picked round robin, an endpoint listed with weight w taking w turns. */
export class Cluster {
  readonly name: string
  readonly endpoints: readonly Endpoint[]
  readonly protocol: 'http1' | 'http2'
  readonly tls: Record<string, unknown> | undefined
  readonly connectTimeout: number
  #next = 0

  constructor (name: string, options: ClusterOptions) {
    this.name = name
    this.endpoints = options.endpoints.flatMap((entry) => {
      if (typeof entry === 'string') return [parseEndpoint(entry)]
      return new Array<Endpoint>(entry.weight ?? 1).fill(parseEndpoint(entry.address))
    })
    this.protocol = options.protocol ?? 'http1'
    this.tls = options.tls as Record<string, unknown> | undefined
    this.connectTimeout = options.connectTimeout ?? 5000
  }

  pick (): Endpoint {
    const endpoint = this.endpoints[this.#next % this.endpoints.length]!
    this.#next = (this.#next + 1) % this.endpoints.length
    return endpoint
  }
}
