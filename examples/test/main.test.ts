import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { promisify } from 'node:util'
import { runMesh } from './helpers/mesh-process.ts'
import { TOKEN } from './helpers/mesh-clients.ts'

const run = promisify(execFile)
const freePorts = { token: TOKEN, front: { port: 0 }, sidecar: { port: 0 }, app: { port: 0 } }

test('npm run mesh prints the page URL and try-it commands that work as printed', async (t) => {
  const mesh = runMesh(t, freePorts)
  const [, url] = await mesh.line(/open the page \(chat \+ live view of the mesh\): (http:\/\/127\.0\.0\.1:\d+)\/$/)
  const page = await fetch(`${url!}/`)
  assert.equal(page.status, 200)
  assert.match(await page.text(), /<title>switchyard mesh<\/title>/)

  const [, chat] = await mesh.line(/chat over the H2 hop: +node --experimental-websocket --no-warnings -e "(.*)"$/)
  const chatOut = await run(process.execPath, ['--experimental-websocket', '--no-warnings', '-e', chat!])
  assert.equal((JSON.parse(chatOut.stdout) as { text: string }).text, 'hello from the terminal')

  const [, legacy] = await mesh.line(/legacy \(TCP pipe\): +node --experimental-websocket --no-warnings -e "(.*)"$/)
  const legacyOut = await run(process.execPath, ['--experimental-websocket', '--no-warnings', '-e', legacy!])
  assert.equal((JSON.parse(legacyOut.stdout) as { text: string }).text, 'hello the old way')

  const [, shout] = await mesh.line(/non-WebSocket upgrade: +node -e "(.*)"$/)
  const shoutOut = await run(process.execPath, ['-e', shout!])
  assert.match(shoutOut.stdout, /^HTTP\/1\.1 101 [^]*\r\n\r\nHELLO OVER H2\nBYE\n$/)

  const [, connect] = await mesh.line(/CONNECT tunnel \(TCP\): +node -e "(.*)"$/)
  const connectOut = await run(process.execPath, ['-e', connect!])
  assert.match(connectOut.stdout, /^HTTP\/1\.1 200 Connection Established\r\n[^]*\r\n\r\nhello through CONNECT\n$/)

  await mesh.line(/access GET \/shout shout 101 /)
  await mesh.line(/access CONNECT \/echo\.mesh:7 connect 200 /)
  mesh.child.kill('SIGINT')
  const [code] = await once(mesh.child, 'exit')
  assert.equal(code, 0)
  assert.ok(mesh.lines.some((l) => /^SIGINT: draining — new upgrades refused \(503\)/.test(l)))
  assert.equal(mesh.lines.at(-1), 'mesh closed')
})

test('a config file with a wrong field stops the mesh with the field named', async (t) => {
  const mesh = runMesh(t, { front: { port: 'eighty' } })
  const [code] = await once(mesh.child, 'exit')
  assert.equal(code, 2)
  assert.equal(mesh.stderr().trim(), 'mesh config: /front/port must be integer')
})
