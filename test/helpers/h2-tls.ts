/**
 * A self-signed certificate for 127.0.0.1 / localhost, generated with openssl into a temp dir. A test
 * checks `havePeers(t, 'openssl')` (helpers/peers.ts) first.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerPath } from './peers.ts'

export interface SelfSigned { key: string, cert: string, keyFile: string, certFile: string, pemFile: string, dir: string }

/** Writes key.pem, cert.pem and both together (haproxy's `crt`) in a fresh temp dir; `cleanup` removes it. */
export function selfSigned (): SelfSigned & { cleanup (): void } {
  const dir = mkdtempSync(join(tmpdir(), 'swy-h2-tls-'))
  const keyFile = join(dir, 'key.pem')
  const certFile = join(dir, 'cert.pem')
  execFileSync(peerPath('openssl'), [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', keyFile, '-out', certFile
  ], { stdio: 'ignore' })
  const key = readFileSync(keyFile, 'utf8')
  const cert = readFileSync(certFile, 'utf8')
  const pemFile = join(dir, 'both.pem')
  writeFileSync(pemFile, cert + key)
  return { key, cert, keyFile, certFile, pemFile, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}
