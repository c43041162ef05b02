// The bench's smoke test (CI runs it through `.ci/run`, never inside `npm test`): a quick run of every mode
// this machine can run must finish, measure every phase of every mode that starts, skip the others with a
// reason, and print a verdict for every target. It checks what the harness reports, never a timing.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { discoverModes } from '../lib/discover.ts'
import type { ModeResult } from '../lib/phases.ts'
import { TARGETS } from '../lib/targets.ts'

const BENCH = fileURLToPath(new URL('..', import.meta.url))
const PEERS = ['nginx', 'haproxy-h1', 'haproxy-h1-h2-h1', 'nghttpx-h1-h2-h1']

test('every peer mode is skipped with a one-line reason naming its binary when the binary is not on PATH', async (t) => {
  const modes = await discoverModes()
  const path = process.env.PATH
  const empty = mkdtempSync(join(tmpdir(), 'swy-bench-path-'))
  t.after(() => {
    process.env.PATH = path
    rmSync(empty, { recursive: true, force: true })
  })
  process.env.PATH = empty
  for (const name of PEERS) {
    const mode = modes.find((m) => m.name === name)
    assert.ok(mode?.unavailable !== undefined, `${name} checks for its binary`)
    const reason = await mode.unavailable()
    assert.match(reason ?? '', /^(nginx|haproxy|nghttpx) is not installed \(Debian package [a-z0-9-]+\)$/, name)
  }
})

test('a quick run of every mode measures each phase of each mode that starts and prints a verdict for every target', { timeout: 900_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'swy-bench-smoke-'))
  t.after(() => rmSync(out, { recursive: true, force: true }))
  const args = ['--import', 'tsx', 'run.ts', '--quick', ...(cpus().length >= 2 ? ['--pin'] : [])]
  const child = spawn(process.execPath, args, { cwd: BENCH, env: { ...process.env, BENCH_RESULTS: out }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdout.resume()
  const [code] = await once(child, 'exit') as [number | null]
  assert.equal(code, 0, `bench exited with ${code}:\n${stderr.slice(-4000)}`)

  const { results } = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as { results: ModeResult[] }
  const report = readFileSync(join(out, 'latest.md'), 'utf8')
  const modes = await discoverModes()
  assert.deepEqual(results.map((r) => r.mode).sort(), modes.map((m) => m.name).sort(), 'every mode is in the results')
  for (const r of results) {
    assert.equal(r.error, undefined, `${r.mode} started`)
    assert.deepEqual(r.phaseErrors, {}, `${r.mode}: no phase failed`)
    if (r.skipped !== undefined) {
      assert.doesNotMatch(r.skipped, /\n/, `${r.mode}: the reason is one line`)
      assert.ok(report.includes(`- ${r.mode}: skipped — ${r.skipped}`), `${r.mode}: the report says why it was skipped`)
      continue
    }
    const mode = modes.find((m) => m.name === r.mode)!
    const phases = mode.phases ?? ['memory', 'handshakes', 'small', 'large', 'stream']
    for (const phase of phases) {
      if (phase === 'memory' && r.mode === 'direct') continue
      assert.ok(r[phase] !== undefined, `${r.mode}: ${phase} measured`)
    }
    assert.match(report, new RegExp(`^\\| ${r.mode} \\|`, 'm'), `${r.mode} has a row in the table`)
  }
  // Peers this machine has run; the smoke test runs where CI installs them (.ci/run).
  for (const peer of PEERS) {
    const r = results.find((x) => x.mode === peer)
    if (r?.skipped !== undefined) t.diagnostic(`${peer}: ${r.skipped}`)
  }

  const verdicts = report.split('\n').filter((line) => /^- \*\*[a-z0-9-]+\*\* .* vs [a-z0-9-]+: /.test(line))
  assert.equal(verdicts.length, TARGETS.length, 'one verdict line per target')
  const ran = new Set(results.filter((r) => r.skipped === undefined).map((r) => r.mode))
  TARGETS.forEach((target, i) => {
    const line = verdicts[i]
    assert.ok(line.startsWith(`- **${target.mode}** ${target.figure.label} vs ${target.vs}:`), line)
    if (ran.has(target.mode) && ran.has(target.vs)) assert.match(line, /\*\*(met|NOT met)\*\*, (margin|needs) [\d.]+ %/, line)
    else assert.match(line, /\*\*not measured\*\* \(.*did not run/, line)
  })

  // The scale phase: every step of both fronts measured, the H1→H2→H1 tunnels on one HTTP/2 connection.
  for (const name of ['core', 'h1-h2-h1']) {
    const scale = results.find((r) => r.mode === name)?.scale
    assert.ok(scale !== undefined, `${name}: scale phase ran`)
    assert.deepEqual(scale.steps.map((s) => s.tunnels), [100, 500], `${name}: every step`)
    for (const step of scale.steps) assert.ok(step.cpuPerMessage !== null && step.heapPerTunnel !== null, `${name} at ${step.tunnels}: measured`)
  }
  const mesh = results.find((r) => r.mode === 'h1-h2-h1')?.scale
  for (const step of mesh?.steps ?? []) assert.equal(step.info.sessions, 1, `${step.tunnels} tunnels ride one HTTP/2 connection`)
  assert.match(report, /^### Scale$/m)
})
