/**
 * The one place a test finds a system binary it talks to (Chromium, HAProxy, nghttpx, curl, nginx,
 * h2load, openssl). A test asks first, before it starts anything:
 *
 *   if (!havePeers(t, 'haproxy')) return
 *
 * When a binary is missing the test is reported as skipped, with a one-line reason and the command that
 * installs it, so `npm test` passes on a machine with only Node and npm. With SWITCHYARD_REQUIRE_PEERS=1
 * (set by `.ci/run`, which installs them) a missing binary fails the test instead.
 *
 * Search order: PATH, then /usr/sbin and /usr/bin (Debian puts haproxy and nghttpx in /usr/sbin, which a
 * non-root PATH lacks); CHROMIUM may name a Chromium binary. SWITCHYARD_PEERS_PATH (a PATH-style list)
 * replaces all of that; it exists to test this helper, e.g. `SWITCHYARD_PEERS_PATH=/nonexistent npm test`.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import type { TestContext } from 'node:test'

/** Every peer a test may need: the binaries that provide it and the Debian package that installs them. */
export const PEERS = {
  chromium: { binaries: ['chromium', 'chromium-browser'], apt: 'chromium' },
  haproxy: { binaries: ['haproxy'], apt: 'haproxy' },
  nghttpx: { binaries: ['nghttpx'], apt: 'nghttp2-proxy' },
  h2load: { binaries: ['h2load'], apt: 'nghttp2-client' },
  curl: { binaries: ['curl'], apt: 'curl' },
  nginx: { binaries: ['nginx'], apt: 'nginx' },
  openssl: { binaries: ['openssl'], apt: 'openssl' }
} as const satisfies Record<string, { binaries: readonly string[], apt: string }>

export type PeerName = keyof typeof PEERS

/** True when SWITCHYARD_REQUIRE_PEERS asks for every peer (CI): a missing one fails instead of skipping. */
export function peersRequired (): boolean {
  const value = process.env.SWITCHYARD_REQUIRE_PEERS
  return value !== undefined && value !== '' && value !== '0'
}

function searchDirs (): string[] {
  const override = process.env.SWITCHYARD_PEERS_PATH
  if (override !== undefined) return override.split(delimiter).filter((d) => d !== '')
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '')
  return [...new Set([...dirs, '/usr/sbin', '/usr/bin'])]
}

function executable (file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

/** The absolute path of a peer's binary, or undefined when none of its binaries is found. */
export function findPeer (name: PeerName): string | undefined {
  const explicit = name === 'chromium' && process.env.SWITCHYARD_PEERS_PATH === undefined ? process.env.CHROMIUM : undefined
  if (explicit !== undefined && explicit !== '' && executable(explicit)) return explicit
  const dirs = searchDirs()
  for (const binary of PEERS[name].binaries) {
    for (const dir of dirs) {
      const file = join(dir, binary)
      if (executable(file)) return file
    }
  }
  return undefined
}

/** The one-line reason a test that needs `missing` cannot run here, with the command that installs them. */
export function missingPeersReason (missing: readonly PeerName[]): string {
  const packages = [...new Set(missing.map((name) => PEERS[name].apt))]
  return `needs ${missing.join(', ')} (not found in PATH, /usr/sbin or /usr/bin): apt-get install -y ${packages.join(' ')}`
}

/**
 * True when every named peer is found. Otherwise the test is skipped with the reason (the caller returns
 * at once), or, under SWITCHYARD_REQUIRE_PEERS=1, this throws so the test fails.
 */
export function havePeers (t: TestContext, ...names: PeerName[]): boolean {
  const missing = names.filter((name) => findPeer(name) === undefined)
  if (missing.length === 0) return true
  const reason = missingPeersReason(missing)
  if (peersRequired()) throw new Error(`${reason} (SWITCHYARD_REQUIRE_PEERS is set)`)
  t.skip(reason)
  return false
}

/** The path of a peer `havePeers` found; throws with the install command when it is missing. */
export function peerPath (name: PeerName): string {
  const path = findPeer(name)
  if (path === undefined) throw new Error(missingPeersReason([name]))
  return path
}
