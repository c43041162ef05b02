import { execFileSync } from 'node:child_process'
import { cpus } from 'node:os'

/**
 * `--pin`: the load client (and the orchestrator) run on CPU 0, everything measured (proxies, the echo
 * upstream) on CPU 1, so the client's work never competes with what is measured. Processes are started
 * through `taskset -c N`; threads and children they create later inherit the mask.
 */
export type Role = 'client' | 'measured'

const CPU_OF: Record<Role, string> = { client: '0', measured: '1' }
let pinned = false

/** Turns pinning on for every process started from now on; throws when this machine cannot pin. */
export function enablePinning (): void {
  if (cpus().length < 2) throw new Error('--pin needs at least 2 CPUs')
  try {
    // -a: every thread of this process (the orchestrator sits with the load client).
    execFileSync('taskset', ['-a', '-p', '-c', CPU_OF.client, String(process.pid)], { stdio: 'ignore' })
  } catch {
    throw new Error('--pin needs taskset (util-linux)')
  }
  pinned = true
}

export function pinningEnabled (): boolean {
  return pinned
}

/** The command prefix that runs a program on `role`'s CPU: `['taskset', '-c', '1']`, or none when not pinning. */
export function pinPrefix (role: Role): string[] {
  return pinned ? ['taskset', '-c', CPU_OF[role]] : []
}

/** One line for the report's header. */
export function pinningText (): string {
  return pinned
    ? `Pinned: load client on CPU ${CPU_OF.client}, proxies and echo upstream on CPU ${CPU_OF.measured} (taskset).`
    : 'Not pinned: every process floats over all CPUs.'
}
