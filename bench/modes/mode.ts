/**
 * What a proxy mode is. One file per mode in this folder exports `mode` (run here, in the
 * orchestrator) and the `listen` functions it forks (run in their own processes), so adding a
 * mode is adding one file: run.ts picks up every `modes/*.ts` that exports `mode`.
 */

/**
 * Thrown by a mode's `listen` when it cannot run here although its binaries exist, e.g. core's schema
 * refuses an option the mode needs (a feature not built yet): the mode is skipped with this message.
 */
export class UnavailableError extends Error {
  override name = 'UnavailableError'
}

/** A TCP endpoint on loopback. */
export interface Endpoint { host: '127.0.0.1', port: number }

/** A server started in a forked process; `close` is awaited before the process ends. */
export interface Listening {
  port: number
  close (): Promise<void>
  /** Facts the mode reports about itself, e.g. `{ sessions: 1 }` HTTP/2 connections accepted (scale phases). */
  info? (): JsonValue
}

/** JSON options handed to a forked `listen` function (they cross the process boundary). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
export type ListenOptions = { [key: string]: JsonValue }

/** A function a mode file exports for `ModeHost.fork` to run in a fresh, measured Node process. */
export type Listen = (options: ListenOptions) => Promise<Listening>

/** What a mode may start. Every process started here is measured (CPU summed, memory summed) and stopped after the mode. */
export interface ModeHost {
  /** Runs `moduleUrl`'s export `exportName` (a `Listen`) in its own Node process; resolves to where it listens. */
  fork (moduleUrl: string, exportName: string, options: ListenOptions): Promise<Endpoint>
  /** Runs a non-Node server (HAProxy, nghttpx, …) that listens on 127.0.0.1:`port`; measured from /proc. */
  spawn (command: string, args: string[], port: number): Promise<Endpoint>
  /** A port free on 127.0.0.1 right now, for `spawn` configurations. */
  freePort (): Promise<number>
  /** `count` more ports of the echo upstream (same process, same behaviour), for many-endpoint clusters. */
  upstreams (count: number): Promise<Endpoint[]>
  /** A fresh directory for this mode's configuration, logs and pid files (removed at the end of the run). */
  tempDir (): string
}

/** The measured phases, in run order. */
export const PHASE_NAMES = ['memory', 'handshakes', 'small', 'large', 'stream'] as const
export type PhaseName = typeof PHASE_NAMES[number]

export interface ProxyMode {
  /** The name `--modes` selects and the table shows. */
  readonly name: string
  /** One line for the README and the table's legend. */
  readonly description: string
  /** Run order; the references come first (direct 0, bare-pipe 1). */
  readonly order: number
  /** The phases this mode runs (default: all); the targets it takes part in are listed in lib/targets.ts. */
  readonly phases?: readonly PhaseName[]
  /**
   * Given: the scale phase runs this mode (lib/scale.ts). `fdsPerTunnel`: file descriptors one tunnel holds
   * in the busiest of its processes (2 for an HTTP/1.1 front, 1 for each hop of a front with an HTTP/2
   * upstream), which caps the tunnels under the open-files limit.
   */
  readonly scale?: { fdsPerTunnel: number }
  /** Why the mode cannot run on this machine (a missing binary or package), or null. */
  unavailable? (): Promise<string | null>
  /** Starts the proxy process(es) in front of `upstream`; resolves to the endpoint the load client dials. */
  start (host: ModeHost, upstream: Endpoint): Promise<Endpoint>
}

/**
 * Circuit breakers for the proxies under test: the scale phase holds 10,000 tunnels through one cluster,
 * above Envoy's default limits of 1,024 connections and requests (which core applies to every cluster).
 */
export const SCALE_BREAKERS = { maxConnections: 100_000, maxPendingRequests: 100_000, maxRequests: 100_000 }
