#!/usr/bin/env node
// Dependency-free lint for one workspace package: `node scripts/lint.mjs <package dir>`.
// Prints each finding as `file:line message` and exits 1 when there is any.
//
// Rules
// - tests (a `test/` folder or a *.test.* / *.tst.* file): no `.only(`, `only: true`, `.skip(`, `skip: true`,
//   `todo:`; the one exception is test/helpers/peers.ts, which skips at run time a test whose system
//   binary is missing (`t.skip(reason)`, or a failure under SWITCHYARD_REQUIRE_PEERS=1)
// - `src/`: no `console.log`, no file over MAX_SRC_LINES lines
// - everywhere: no TypeScript `enum` or `namespace` (use `as const` objects and modules)
// - a package with `src/errors.ts`: every SWY_ERR_* code defined there is in the README's Errors
//   table, and every code in that table is defined there
// - every folder holding *.test.* files (node:test) is run by a package.json script (`<folder>/*.test.ts`), since
//   Node 20's `--test` expands no glob and a folder left out of the list would silently never run
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const MAX_SRC_LINES = 600
// The only file allowed to skip a test: it decides at run time, from the binaries this machine has.
const PEERS_HELPER = join('test', 'helpers', 'peers.ts')
const SKIP_DIRS = new Set(['node_modules', 'dist', '.turbo', 'coverage', 'test-artifacts', 'results'])
const SOURCE_FILE = /\.(?:[cm]?ts|tsx|[cm]?js)$/
const TEST_FILE = /\.(?:test|spec|tst)\.[cm]?[jt]sx?$/

const TEST_RULES = [
  [/\.only\(/, 'focused test (.only) left in'],
  [/\bonly:\s*true\b/, 'focused test (only: true) left in'],
  [/\.skip\(/, 'skipped test (.skip) left in: a test needing a system binary asks havePeers(t, …) (test/helpers/peers.ts)'],
  [/\bskip:\s*(?:true|['"`])/, 'skipped test (skip:) left in'],
  [/\btodo:/, 'todo test (todo:) left in']
]
const TYPESCRIPT_RULES = [
  [/^\s*(?:export\s+)?(?:declare\s+)?(?:const\s+)?enum\s+[A-Za-z_$]/, 'TypeScript enum: use an `as const` object'],
  [/^\s*(?:export\s+)?(?:declare\s+)?namespace\s+[A-Za-z_$]/, 'TypeScript namespace: use a module']
]
const CONSOLE_LOG = /\bconsole\.log\s*\(/
const ERROR_CODE = /SWY_ERR_[A-Z0-9_]+/g

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const pkgDir = resolve(process.argv[2] ?? '.')
const findings = []
let fileCount = 0

function report (file, line, message) {
  findings.push(`${relative(process.cwd(), file) || file}:${line} ${message}`)
}

function walk (dir, out) {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return out
  }
  for (const entry of entries) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.')) walk(join(dir, entry.name), out)
    } else if (entry.isFile() && SOURCE_FILE.test(entry.name)) {
      out.push(join(dir, entry.name))
    }
  }
  return out
}

function isCommentLine (line) {
  const t = line.trimStart()
  return t.startsWith('//') || t.startsWith('*') || t.startsWith('/*')
}

function lintFile (file) {
  fileCount++
  const fromRoot = relative(repoRoot, file).split(sep)
  const fromPkg = relative(pkgDir, file).split(sep)
  const isTest = TEST_FILE.test(file) || fromRoot.slice(0, -1).includes('test')
  const isSrc = fromPkg[0] === 'src'
  const isTs = /\.[cm]?tsx?$/.test(file)

  const text = readFileSync(file, 'utf8')
  const lines = text.split('\n')
  const lineCount = lines.length - (lines.at(-1) === '' ? 1 : 0)
  if (isSrc && lineCount > MAX_SRC_LINES) {
    report(file, MAX_SRC_LINES + 1, `file has ${lineCount} lines (max ${MAX_SRC_LINES} in src/): split it by role`)
  }
  // Cheap pre-checks keep the per-line loop to the files that can match at all.
  const checkTests = isTest && relative(repoRoot, file) !== PEERS_HELPER && /\.only\(|only:|\.skip\(|skip:|todo:/.test(text)
  const checkConsole = isSrc && text.includes('console.log')
  const checkTs = isTs && /\b(?:enum|namespace)\b/.test(text)
  if (!checkTests && !checkConsole && !checkTs) return

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (checkTests) {
      for (const [re, message] of TEST_RULES) if (re.test(line)) report(file, i + 1, message)
    }
    if (checkConsole && CONSOLE_LOG.test(line) && !isCommentLine(line)) {
      report(file, i + 1, 'console.log in src/: use the Fastify logger (ctx.log / app.log)')
    }
    if (checkTs) {
      for (const [re, message] of TYPESCRIPT_RULES) if (re.test(line)) report(file, i + 1, message)
    }
  }
}

/** Codes with the line of their first appearance, in order. */
function codesIn (lines, from = 0, to = lines.length) {
  const codes = new Map()
  for (let i = from; i < to; i++) {
    for (const [code] of lines[i].matchAll(ERROR_CODE)) if (!codes.has(code)) codes.set(code, i + 1)
  }
  return codes
}

function lintErrorsTable () {
  const errorsFile = join(pkgDir, 'src', 'errors.ts')
  if (!existsSync(errorsFile)) return
  const defined = codesIn(readFileSync(errorsFile, 'utf8').split('\n'))

  const readme = join(pkgDir, 'README.md')
  if (!existsSync(readme)) {
    report(readme, 1, `missing README.md (needs an Errors table for the ${defined.size} codes in src/errors.ts)`)
    return
  }
  const lines = readFileSync(readme, 'utf8').split('\n')
  const heading = lines.findIndex((l) => /^#{1,6}\s+errors\b/i.test(l))
  if (heading === -1) {
    report(readme, 1, 'no "Errors" heading: add an Errors table (code | when | how to fix)')
    return
  }
  // The table: the first run of `|` rows after the heading, before the next heading.
  let start = heading + 1
  while (start < lines.length && !lines[start].trimStart().startsWith('|') && !/^#{1,6}\s/.test(lines[start])) start++
  let end = start
  while (end < lines.length && lines[end].trimStart().startsWith('|')) end++
  if (start === end) {
    report(readme, heading + 1, 'the Errors section has no table')
    return
  }
  const documented = new Map()
  for (let i = start; i < end; i++) {
    const firstCell = lines[i].split('|')[1] ?? ''
    for (const [code] of firstCell.matchAll(ERROR_CODE)) {
      if (documented.has(code)) report(readme, i + 1, `${code} is listed twice in the Errors table`)
      else documented.set(code, i + 1)
    }
  }
  for (const [code, line] of defined) {
    if (!documented.has(code)) report(errorsFile, line, `${code} is not in the README's Errors table`)
  }
  for (const [code, line] of documented) {
    if (!defined.has(code)) report(readme, line, `${code} is in the Errors table but not defined in src/errors.ts`)
  }
}

function lintTestFolders (files) {
  const pkgJson = join(pkgDir, 'package.json')
  if (!existsSync(pkgJson)) return
  const scripts = Object.values(JSON.parse(readFileSync(pkgJson, 'utf8')).scripts ?? {}).join(' ')
  // node:test files only: tstyche finds its *.tst.ts files itself (tstyche.config.json).
  const folders = new Set(files.filter((f) => /\.test\.[cm]?[jt]sx?$/.test(f)).map((f) => relative(pkgDir, dirname(f)).split(sep).join('/')))
  for (const folder of folders) {
    const glob = folder === '' ? '*.test.' : `${folder}/*.test.`
    if (!scripts.includes(glob)) report(pkgJson, 1, `no script runs the tests in ${folder || '.'}/ (add ${glob}ts to the test script)`)
  }
}

if (!existsSync(pkgDir)) {
  console.error(`lint: no such directory: ${pkgDir}`)
  process.exit(2)
}
const files = walk(pkgDir, [])
for (const file of files) lintFile(file)
lintErrorsTable()
lintTestFolders(files)

if (findings.length > 0) {
  for (const finding of findings) console.log(finding)
  console.log(`lint: ${findings.length} finding${findings.length === 1 ? '' : 's'} in ${relative(repoRoot, pkgDir) || '.'}`)
  process.exit(1)
}
console.log(`lint: ${fileCount} files clean in ${relative(repoRoot, pkgDir) || '.'}`)
