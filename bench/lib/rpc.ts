/** The IPC protocol between the orchestrator (run.ts) and its child processes. */

export interface RpcRequest { id: number, method: string, params?: unknown }
export interface RpcResponse { id: number, result?: unknown, error?: string }
export interface ReadyMessage { ready: true, port: number }
/** A child that could not start; `unavailable`: it cannot run here (the mode is skipped, not failed). */
export interface FailedMessage { error: string, unavailable?: boolean }

// Handlers take whatever JSON the orchestrator sends; each one narrows its own params.
export type Handlers = Record<string, (params: any) => unknown>

/** A process sample: CPU used since start (user + system, µs) and memory now (bytes). */
export interface Sample { cpuMicros: number, rss: number, heapUsed: number | null }

/** Child side: answers the orchestrator's calls; exits when the orchestrator goes away. */
export function serveRpc (handlers: Handlers): void {
  process.on('message', (msg: RpcRequest) => {
    const handler = handlers[msg.method]
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown method ${msg.method}`)
        return handler(msg.params)
      })
      .then(
        (result) => reply({ id: msg.id, result: result ?? null }),
        (err: Error) => reply({ id: msg.id, error: err?.stack ?? String(err) })
      )
  })
  process.on('disconnect', () => process.exit(0))
}

function reply (response: RpcResponse): void {
  if (process.connected) process.send?.(response)
}

/** Child side: tells the orchestrator the child is listening. */
export function announceReady (port: number): void {
  process.send?.({ ready: true, port } satisfies ReadyMessage)
}

/** Child side: tells the orchestrator the child could not start, then exits. */
export function announceFailure (err: unknown, unavailable: boolean): void {
  const error = (err as Error)?.message ?? String(err)
  if (process.send === undefined) throw err
  process.send({ error, unavailable } satisfies FailedMessage, () => process.exit(1))
}

/** Child side: this process's sample, after a full GC when asked (needs `--expose-gc`). */
export async function sampleSelf (gc: boolean): Promise<Sample> {
  if (gc && globalThis.gc !== undefined) {
    globalThis.gc()
    await new Promise((resolve) => setImmediate(resolve))
    globalThis.gc()
  }
  const cpu = process.cpuUsage()
  const mem = process.memoryUsage()
  return { cpuMicros: cpu.user + cpu.system, rss: mem.rss, heapUsed: mem.heapUsed }
}
