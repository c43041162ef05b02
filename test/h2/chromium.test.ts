import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { startEchoApp, startNode, watchHttp2 } from '../helpers/h2-mesh.ts'
import { selfSigned } from '../helpers/h2-tls.ts'
import { havePeers, peerPath } from '../helpers/peers.ts'

const page = `<!doctype html><meta charset="utf-8"><title>h2 websocket</title><script>
  const ws = new WebSocket('wss://' + location.host + '/ws/browser')
  ws.onopen = () => ws.send('hello from chromium')
  ws.onmessage = (e) => { window.echoed = e.data; ws.close(1000) }
  ws.onerror = () => { window.echoed = 'error' }
</script>`

test('carries a Chromium WebSocket over TLS HTTP/2 as RFC 8441 extended CONNECT to an HTTP/1.1 app and back', async (t) => {
  if (!havePeers(t, 'chromium', 'openssl')) return
  const tls = selfSigned()
  t.after(() => tls.cleanup())
  const echoApp = await startEchoApp(t)
  let pageVersion = ''
  const server = await startNode(t, {
    listen: 'tls',
    tls,
    upstream: `127.0.0.1:${echoApp.port}`,
    upstreamProtocol: 'http1',
    routes: (app) => app.get('/', async (request, reply) => {
      pageVersion = request.raw.httpVersion
      return reply.type('text/html').send(page)
    })
  })
  const watch = watchHttp2(server.app.server)
  const seen = echoApp.next()

  const profile = mkdtempSync(join(tmpdir(), 'swy-chromium-'))
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: peerPath('chromium'),
    headless: true,
    ignoreHTTPSErrors: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--ignore-certificate-errors']
  })
  t.after(async () => {
    await browser.close()
    rmSync(profile, { recursive: true, force: true })
  })
  const tab = await browser.newPage()
  await tab.goto(`https://127.0.0.1:${server.port}/`)
  const echoed = await tab.waitForFunction(() => (globalThis as unknown as { echoed?: string }).echoed)
  assert.equal(await echoed.jsonValue(), 'hello from chromium')

  assert.equal(pageVersion, '2.0', 'the page came over HTTP/2')
  const connect = watch.connects.find(h => h[':protocol'] === 'websocket')
  assert.ok(connect, `the browser sent an extended CONNECT (saw ${JSON.stringify(watch.connects)})`)
  assert.equal(connect[':path'], '/ws/browser')
  assert.ok(watch.sessions.every(s => s.alpnProtocol === 'h2'))
  const app = await seen
  assert.equal(app.method, 'GET')
  assert.equal(app.headers.upgrade, 'websocket')
  assert.match(String(app.headers['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/, 'a key was generated for the HTTP/1.1 app')
})
