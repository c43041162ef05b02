/** `npm run mesh` as a child process: started with a config file, read line by line, stopped with SIGINT. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'

const main = fileURLToPath(new URL('../../mesh/main.ts', import.meta.url))

export interface MeshProcess {
  child: ChildProcessWithoutNullStreams
  /** Every stdout line so far. */
  lines: string[]
  /** Resolves with the first line (already read or still to come) matching `re`. */
  line (re: RegExp): Promise<RegExpExecArray>
  stderr (): string
}

/** Writes `config` to a temporary file and runs `mesh/main.ts --config <file> ...args`. */
export function runMesh (t: TestContext, config: unknown, args: string[] = []): MeshProcess {
  const dir = mkdtempSync(join(tmpdir(), 'swy-mesh-'))
  const file = join(dir, 'mesh.json')
  writeFileSync(file, JSON.stringify(config))
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', main, '--config', file, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn' }
  })
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const lines: string[] = []
  const waiting: Array<{ re: RegExp, resolve: (m: RegExpExecArray) => void }> = []
  const input = createInterface({ input: child.stdout })
  input.on('line', (line) => {
    lines.push(line)
    for (const w of [...waiting]) {
      const m = w.re.exec(line)
      if (m !== null) { waiting.splice(waiting.indexOf(w), 1); w.resolve(m) }
    }
  })
  const closed = once(input, 'close')
  return {
    child,
    lines,
    stderr: () => err,
    async line (re) {
      for (const l of lines) { const m = re.exec(l); if (m !== null) return m }
      const found = new Promise<RegExpExecArray>((resolve) => waiting.push({ re, resolve }))
      return await Promise.race([found, closed.then(() => { throw new Error(`mesh exited before a line matching ${String(re)}; stderr: ${err}`) })])
    }
  }
}
