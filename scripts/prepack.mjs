#!/usr/bin/env node
// `prepack` of each published package (run by `pnpm pack` / `pnpm publish` in the package's folder):
// a fresh `dist/` built by `tsc -b`, so a tarball never ships a file whose source was removed, and a
// fresh clone packs a built package.
import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const pkgDir = process.cwd()
rmSync(join(pkgDir, 'dist'), { recursive: true, force: true })
rmSync(join(pkgDir, 'tsconfig.tsbuildinfo'), { force: true })
const tsc = createRequire(join(pkgDir, 'package.json')).resolve('typescript/bin/tsc')
execFileSync(process.execPath, [tsc, '-b'], { cwd: pkgDir, stdio: 'inherit' })
