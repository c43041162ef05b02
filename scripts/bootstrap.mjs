#!/usr/bin/env node
// Installs the workspace when it is missing or older than the lockfile, so that on a machine with
// only Node 20 and npm, `npm run mesh` and `npm test` each work as one command on a fresh clone.
// pnpm is pinned and run through npx: corepack cannot fetch it here (no registry signatures).
import { spawnSync } from 'node:child_process'
import { statSync, utimesSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const PNPM = 'pnpm@12.4.2'
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const lockfile = join(root, 'pnpm-lock.yaml')
const marker = join(root, 'node_modules', '.modules.yaml')

function mtime (file) {
  try {
    return statSync(file).mtimeMs
  } catch {
    return undefined
  }
}

const installed = mtime(marker)
const locked = mtime(lockfile)

if (installed !== undefined && (locked === undefined || installed >= locked)) process.exit(0)

const reason = installed === undefined ? 'no node_modules yet' : 'pnpm-lock.yaml changed since the last install'
console.error(`bootstrap: ${reason}; installing with ${PNPM} (frozen lockfile)`)

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx'
const result = spawnSync(npx, ['-y', PNPM, 'install', '--frozen-lockfile'], {
  cwd: root,
  stdio: 'inherit',
  shell: process.platform === 'win32'
})

if (result.error) {
  console.error(`bootstrap: could not run ${npx}: ${result.error.message}`)
  process.exit(1)
}
if (result.status !== 0) {
  console.error(`bootstrap: ${PNPM} install failed (exit ${result.status ?? result.signal})`)
  process.exit(result.status || 1)
}

// pnpm leaves .modules.yaml untouched when nothing changed: mark the install as fresh ourselves.
const now = new Date()
try {
  utimesSync(marker, now, now)
} catch {}
