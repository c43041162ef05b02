/**
 * Runs a fixture script from test/fixtures/ in its own Node process (TypeScript through tsx, package
 * sources through the `source` condition) for faults that need a process to die: SIGKILL leaves its
 * sockets to the kernel, as a crash does.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { TestContext } from 'node:test'

export interface Fixture {
  child: ChildProcess
  /** The first line the script printed, parsed (each fixture prints `{"port":N}` once ready). */
  ready: Record<string, unknown> & { port: number }
  /** Lines printed after the first, as they arrive. */
  lines: AsyncIterator<string>
  /** SIGKILLs the process and waits for it to exit. */
  kill (): Promise<void>
}

const fixtures = new URL('../fixtures/', import.meta.url)

/** Starts `test/fixtures/<script>` with `args`; `t.after` kills it if it still runs. */
export async function startFixture (t: TestContext, script: string, args: string[] = [], nodeArgs: string[] = []): Promise<Fixture> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', ...nodeArgs, new URL(script, fixtures).pathname, ...args], {
    stdio: ['pipe', 'pipe', 'inherit']
  })
  const exited = once(child, 'exit')
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.after(kill)
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const first = await lines.next()
  if (first.done === true) throw new Error(`fixture ${script} exited before it was ready`)
  return { child, ready: JSON.parse(first.value) as Fixture['ready'], lines, kill }
}
