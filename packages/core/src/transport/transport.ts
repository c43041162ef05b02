import type { Duplex, Readable } from 'node:stream'
import type { Endpoint } from '../cluster/endpoint.js'
import type { Cluster } from '../cluster/cluster.js'
import type { Headers } from '../headers.js'

/** An upgrade request as the router sends it to one endpoint. */
export interface UpgradeRequest {
  cluster: Cluster
  endpoint: Endpoint
  method: string
  /** Path and query, after rewrites; for a CONNECT, the `host:port` it asks for. */
  path: string
  upgradeType: string
  /** Lower-case headers after the filters, rewrites and sanitising; `upgrade`/`connection` included. */
  headers: Headers
}

/** What a transport reports back. Exactly one of `accepted`, `response`, `failed` is called. */
export interface UpgradeEvents {
  /**
   * The upstream accepted (H1 101, H2 200; any 2xx to a CONNECT, `statusCode`, 101 when not given): bytes
   * flow through `socket`; `head` came right after the answer.
   */
  accepted (headers: Headers, socket: Duplex, head: Buffer, statusCode?: number): void
  /** Any other answer: relayed as an ordinary response; `body` ends when the answer ends. */
  response (statusCode: number, headers: Headers, body: Readable): void
  /**
   * No usable answer: `connect` when no connection could be made, `reset` when it broke before an answer
   * (both may be retried), `protocol` when the upstream cannot take this upgrade or answered something
   * unusable (never retried; answered locally with the error's `statusCode`, 502 by default).
   */
  failed (error: Error & { statusCode?: number }, phase: 'connect' | 'reset' | 'protocol'): void
}

export interface PendingUpgrade {
  /** Gives up on this attempt: its connection is destroyed, no event follows. */
  abort (): void
}

/**
 * An upstream transport for upgrades: HTTP/1.1 Upgrade in core, HTTP/2 extended CONNECT in
 * @switchyard/h2-connect. Chosen by the cluster's `protocol`.
 */
export interface UpgradeTransport {
  open (request: UpgradeRequest, events: UpgradeEvents): PendingUpgrade
  /** Closes whatever the transport pools (called by `app.close()`). */
  close? (): void
}
