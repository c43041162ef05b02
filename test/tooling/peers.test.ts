import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findPeer, missingPeersReason } from '../helpers/peers.ts'

const fixture = new URL('../fixtures/needs-peers.ts', import.meta.url).pathname

/** Runs the fixture under `node --test` with `env` added; resolves with its exit code and output. */
async function runFixture (env: Record<string, string>): Promise<{ code: number | null, output: string }> {
  // Without NODE_TEST_CONTEXT the child is a runner of its own, not a file of this run.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', fixture], {
    env: { ...inherited, SWITCHYARD_REQUIRE_PEERS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, output }
}

/** A directory holding an executable file named `name`. */
function fakeBinary (t: { after (fn: () => void): void }, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'swy-peers-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, name), '#!/bin/sh\nexit 0\n')
  chmodSync(join(dir, name), 0o755)
  return dir
}

test('a test whose binaries are missing is reported as skipped, by name, with the install command', async () => {
  const { code, output } = await runFixture({ SWITCHYARD_PEERS_PATH: '/nonexistent' })
  assert.equal(code, 0, output)
  assert.match(output, /a test that needs haproxy and nghttpx .*# needs haproxy, nghttpx \(not found in PATH, \/usr\/sbin or \/usr\/bin\): apt-get install -y haproxy nghttp2-proxy/)
  assert.match(output, /ℹ skipped 1\n/)
  assert.match(output, /ℹ pass 1\n/)
})

test('with SWITCHYARD_REQUIRE_PEERS=1 a missing binary fails the test instead', async () => {
  const { code, output } = await runFixture({ SWITCHYARD_PEERS_PATH: '/nonexistent', SWITCHYARD_REQUIRE_PEERS: '1' })
  assert.equal(code, 1, output)
  assert.match(output, /apt-get install -y haproxy nghttp2-proxy \(SWITCHYARD_REQUIRE_PEERS is set\)/)
  assert.match(output, /ℹ fail 1\n/)
  assert.match(output, /ℹ skipped 0\n/)
})

test('finds a binary in the directories it is told to search, and only there', (t) => {
  const dir = fakeBinary(t, 'haproxy')
  const saved = process.env.SWITCHYARD_PEERS_PATH
  t.after(() => {
    if (saved === undefined) delete process.env.SWITCHYARD_PEERS_PATH
    else process.env.SWITCHYARD_PEERS_PATH = saved
  })
  process.env.SWITCHYARD_PEERS_PATH = dir
  assert.equal(findPeer('haproxy'), join(dir, 'haproxy'))
  assert.equal(findPeer('nghttpx'), undefined)
})

test('names the Debian package of each missing binary once', () => {
  assert.equal(missingPeersReason(['nghttpx', 'h2load']),
    'needs nghttpx, h2load (not found in PATH, /usr/sbin or /usr/bin): apt-get install -y nghttp2-proxy nghttp2-client')
})
