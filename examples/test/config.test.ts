import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { appPorts, defaultConfig, loadConfig, resolveConfig } from '../mesh/config.ts'

function file (t: import('node:test').TestContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'swy-mesh-config-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'mesh.json')
  writeFileSync(path, text)
  return path
}

test('the embedded default is a whole, valid topology on fixed loopback ports', () => {
  assert.deepEqual(resolveConfig(), defaultConfig)
  assert.equal(defaultConfig.host, '127.0.0.1')
  assert.deepEqual([defaultConfig.front.port, defaultConfig.sidecar.port, defaultConfig.app.port], [8080, 8081, 8082])
  assert.equal(defaultConfig.front.workers, 1)
  // Two app instances, on consecutive ports (each on a free one when the port is 0).
  assert.deepEqual(appPorts(defaultConfig), [8082, 8083])
  assert.deepEqual(appPorts(resolveConfig({ app: { port: 0, instances: 3 } })), [0, 0, 0])
})

test('a file sets only the fields it names; the default fills the rest', async (t) => {
  const config = await loadConfig(file(t, JSON.stringify({ front: { port: 0, workers: 3 }, app: { port: 9100 } })))
  assert.deepEqual(config.front, { port: 0, workers: 3, shutdownGracePeriod: defaultConfig.front.shutdownGracePeriod })
  assert.equal(config.app.port, 9100)
  assert.equal(config.sidecar.port, defaultConfig.sidecar.port)
  assert.equal(config.token, defaultConfig.token)
})

test('a wrong value is refused with an error naming the field and the reason', () => {
  assert.throws(() => resolveConfig({ front: { port: '8080' } }), { message: 'mesh config: /front/port must be integer' })
  assert.throws(() => resolveConfig({ sidecar: { port: 70000 } }), { message: 'mesh config: /sidecar/port must be <= 65535' })
  assert.throws(() => resolveConfig({ front: { workers: 0 } }), { message: 'mesh config: /front/workers must be >= 1' })
  assert.throws(() => resolveConfig({ front: 8080 }), { message: 'mesh config: /front must be object' })
  assert.throws(() => resolveConfig({ app: { instances: 0 } }), { message: 'mesh config: /app/instances must be >= 1' })
  assert.throws(() => resolveConfig({ app: { healthCheckInterval: 10 } }), { message: 'mesh config: /app/healthCheckInterval must be >= 50' })
})

test('an unknown field is refused by name, at any depth', () => {
  assert.throws(() => resolveConfig({ frnt: {} }), { message: 'mesh config: /frnt is not a known field' })
  assert.throws(() => resolveConfig({ app: { prot: 1 } }), { message: 'mesh config: /app/prot is not a known field' })
})

test('a file that is not JSON or cannot be read is named in the error', async (t) => {
  const bad = file(t, '{ "front": ')
  await assert.rejects(loadConfig(bad), (err: Error) => err.message.startsWith(`mesh config: ${bad} is not JSON`))
  await assert.rejects(loadConfig(join(tmpdir(), 'no-such-mesh-config.json')), /mesh config: cannot read .*no-such-mesh-config\.json/)
})
