import { spawnSync } from 'node:child_process'

/**
 * Why a peer mode cannot run here: `command` is not on PATH (with the Debian package that has it), or
 * null when it runs. `args` is a harmless invocation that exits at once (`-v`, `--version`).
 */
export function missingBinary (command: string, debianPackage: string, args: string[] = ['-v']): string | null {
  const run = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 })
  return run.error === undefined ? null : `${command} is not installed (Debian package ${debianPackage})`
}
