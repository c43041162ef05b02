import { fork, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { UnavailableError } from '../modes/mode.ts'
import { pinPrefix, type Role } from './pin.ts'
import type { FailedMessage, ReadyMessage, RpcRequest, RpcResponse, Sample } from './rpc.ts'

const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url))
/**
 * How every Node child runs: the harness's own TypeScript via tsx, GC on call, and the @switchyard packages
 * as built (`dist/`, what users install). From source, tsx's keepNames gives every closure a `name` property
 * of its own (a dictionary, ~250 B each), which inflates memory per tunnel; BENCH_FROM_SOURCE=1 measures that.
 */
const NODE_ARGS = [...(process.env.BENCH_FROM_SOURCE === '1' ? ['--conditions=source'] : []), '--import', 'tsx', '--expose-gc']
const READY_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 5_000

/** A process whose CPU and memory the harness measures. */
export interface MeasuredProcess {
  readonly name: string
  readonly pid: number
  /** CPU used since start and memory now; `gc` forces a full GC first where the process allows it. */
  sample (gc: boolean): Promise<Sample>
  stop (): Promise<void>
}

export interface StartOptions {
  /** Extra Node flags. */
  nodeArgs?: string[]
  /** Which CPU the child runs on under `--pin` (default: measured). */
  role?: Role
  /** Send the child's stdout (e.g. `--trace-gc` lines) to this file instead of ours. */
  stdoutFile?: string
}

/** A Node child on IPC: it announces its port, answers calls, and reports its own CPU and memory. */
export class NodeChild implements MeasuredProcess {
  readonly name: string
  readonly port: number
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  #nextId = 1
  #exited: Promise<void>

  private constructor (name: string, child: ChildProcess, port: number, exited: Promise<void>) {
    this.name = name
    this.#child = child
    this.port = port
    this.#exited = exited
    child.on('message', (msg: RpcResponse) => {
      const waiter = this.#pending.get(msg.id)
      if (waiter === undefined) return
      this.#pending.delete(msg.id)
      if (msg.error !== undefined) waiter.reject(new Error(`${name}: ${msg.error}`))
      else waiter.resolve(msg.result)
    })
    void exited.then(() => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`${name} exited`))
      this.#pending.clear()
    })
  }

  get pid (): number { return this.#child.pid ?? -1 }

  /** Forks `entry` (a .ts file under bench/) with `args`, and waits for its ready message. */
  static async start (name: string, entry: string, args: string[], options: StartOptions = {}): Promise<NodeChild> {
    const execArgv = [...NODE_ARGS, ...(options.nodeArgs ?? [])]
    const pin = pinPrefix(options.role ?? 'measured')
    const out = options.stdoutFile !== undefined ? openSync(options.stdoutFile, 'a') : 'inherit'
    // Pinned: fork runs `taskset -c N node <execArgv> entry`; taskset execs node, which keeps the IPC channel.
    const child = fork(entry, args, {
      cwd: BENCH_DIR,
      ...(pin.length > 0 ? { execPath: pin[0], execArgv: [...pin.slice(1), process.execPath, ...execArgv] } : { execArgv }),
      stdio: ['ignore', out, 'inherit', 'ipc']
    })
    if (typeof out === 'number') closeSync(out)
    live.add(child)
    const exited = new Promise<void>((resolve) => child.once('exit', () => { live.delete(child); resolve() }))
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`${name} not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)
      const onMessage = (msg: Partial<ReadyMessage> & Partial<FailedMessage>): void => {
        if (msg.ready === true && typeof msg.port === 'number') { cleanup(); resolve(msg.port) }
        if (msg.error !== undefined) fail(msg.unavailable === true ? new UnavailableError(msg.error) : new Error(`${name}: ${msg.error}`))
      }
      const onExit = (code: number | null): void => fail(new Error(`${name} exited (code ${code}) before it was ready`))
      function cleanup (): void {
        clearTimeout(timer)
        child.off('message', onMessage)
        child.off('exit', onExit)
      }
      function fail (err: Error): void { cleanup(); child.kill('SIGKILL'); reject(err) }
      child.on('message', onMessage)
      child.once('exit', onExit)
    })
    return new NodeChild(name, child, port, exited)
  }

  /** Calls `method` in the child; rejects after `timeoutMs`. */
  call<T> (method: string, params?: unknown, timeoutMs = 60_000): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${this.name}.${method} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v as T) },
        reject: (e) => { clearTimeout(timer); reject(e) }
      })
      this.#child.send({ id, method, params } satisfies RpcRequest)
    })
  }

  sample (gc: boolean): Promise<Sample> {
    return this.call<Sample>('sample', { gc }, 10_000)
  }

  /** Asks the child to close its server, then ends it; SIGKILL if it lingers. */
  async stop (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    await this.call('close', undefined, STOP_TIMEOUT_MS).catch(() => {})
    if (this.#child.connected) this.#child.disconnect()
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await this.#exited
    clearTimeout(timer)
  }
}

/**
 * A non-Node server (HAProxy, nginx, nghttpx, …), measured from /proc over the process and every descendant
 * (nginx's worker under its master): CPU from each thread's `schedstat` (nanoseconds; `stat`'s ticks are 10 ms
 * here), RSS from `status`.
 */
export class ExternalProcess implements MeasuredProcess {
  readonly name: string
  readonly #child: ChildProcess
  readonly #exited: Promise<void>

  private constructor (name: string, child: ChildProcess) {
    this.name = name
    this.#child = child
    this.#exited = new Promise((resolve) => child.once('exit', () => { live.delete(child); resolve() }))
  }

  get pid (): number { return this.#child.pid ?? -1 }

  /** Spawns `command` (on the measured CPU under `--pin`) and waits until 127.0.0.1:`port` accepts a connection. */
  static async start (name: string, command: string, args: string[], port: number): Promise<ExternalProcess> {
    const pin = pinPrefix('measured')
    const [file, ...argv] = [...pin, command, ...args]
    const child = spawn(file, argv, { cwd: BENCH_DIR, stdio: ['ignore', 'inherit', 'inherit'] })
    live.add(child)
    const proc = new ExternalProcess(name, child)
    const deadline = Date.now() + READY_TIMEOUT_MS
    while (!(await accepts(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await proc.stop()
        throw new Error(`${name} (${command}) did not listen on 127.0.0.1:${port}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return proc
  }

  async sample (): Promise<Sample> {
    let cpuNanos = 0
    let rssKb = 0
    for (const pid of await processTree(this.pid)) {
      try {
        for (const tid of await readdir(`/proc/${pid}/task`)) {
          // schedstat: time on CPU (ns), time waiting, timeslices (sched-stats.rst).
          cpuNanos += Number((await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'latin1')).split(' ')[0])
        }
        const status = await readFile(`/proc/${pid}/status`, 'latin1')
        rssKb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
      } catch {
        // The process or thread ended between the listing and the read.
      }
    }
    return { cpuMicros: cpuNanos / 1000, rss: rssKb * 1024, heapUsed: null }
  }

  async stop (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    this.#child.kill('SIGTERM')
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await this.#exited
    clearTimeout(timer)
  }
}

/** `root` and its descendants, from every process's parent pid in /proc/<pid>/stat. */
async function processTree (root: number): Promise<number[]> {
  const parentOf = new Map<number, number>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'latin1')
      // The field after the parenthesised command name and the state is the parent pid (proc(5)).
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const tree = [root]
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parentOf) if (ppid === tree[i]) tree.push(pid)
  }
  return tree
}

function accepts (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

const live = new Set<ChildProcess>()

/** Last resort on an abnormal exit of the orchestrator: kill every child still running. */
export function killAllChildren (): void {
  for (const child of live) child.kill('SIGKILL')
}
