import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { startDemo } from '../demo/demo.ts'

test('the demo echoes text and binary WebSocket messages through the front proxy', async (t) => {
  const demo = await startDemo({ port: 0 })
  t.after(() => demo.close())

  const ws = new WebSocket(demo.url.replace(/^http/, 'ws') + '/echo')
  await once(ws, 'open')
  ws.send('hello')
  const [text, textIsBinary] = await once(ws, 'message')
  assert.equal(String(text), 'hello')
  assert.equal(textIsBinary, false)
  ws.send(Buffer.from([0, 1, 2, 255]))
  const [binary, binaryIsBinary] = await once(ws, 'message')
  assert.deepEqual(Buffer.from(binary), Buffer.from([0, 1, 2, 255]))
  assert.equal(binaryIsBinary, true)
  ws.close()
  await once(ws, 'close')

  const stats = await (await fetch(demo.url + '/stats')).json() as Record<string, number>
  assert.equal(stats['upgrade.websocket.downstream_cx_upgrades_total'], 1)
})

test('the demo falls back to a free port when the asked-for port is busy', async (t) => {
  const first = await startDemo({ port: 0 })
  t.after(() => first.close())
  const busy = Number(new URL(first.url).port)
  const second = await startDemo({ port: busy })
  t.after(() => second.close())
  assert.equal(second.portFallback, true)
  assert.notEqual(new URL(second.url).port, String(busy))
})

test('npm run mesh prints a try-it one-liner that works, and SIGINT exits cleanly', async (t) => {
  const main = fileURLToPath(new URL('../demo/main.ts', import.meta.url))
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', main], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  let tryIt: string | undefined
  for await (const line of createInterface({ input: child.stdout })) {
    const match = /try it \(another terminal\): node --experimental-websocket -e "(.*)"$/.exec(line)
    if (match) { tryIt = match[1]; break }
  }
  assert.ok(tryIt, 'main.ts printed the try-it line')

  const client = spawn(process.execPath, ['--experimental-websocket', '--no-warnings', '-e', tryIt], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  client.stdout.on('data', (chunk) => { out += chunk })
  const [code] = await once(client, 'exit')
  assert.equal(code, 0)
  assert.equal(out.trim(), 'echo: hello through switchyard')

  child.kill('SIGINT')
  const [exitCode] = await once(child, 'exit')
  assert.equal(exitCode, 0)
})
