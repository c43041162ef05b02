import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import switchyard from '@switchyard/core'
import { appStateOf } from '@switchyard/core/internal'
import h2Connect from '@switchyard/h2-connect'
import websocketTcp from '@switchyard/websocket-tcp'

const transport = { open () { return { abort () {} } } }

test('a second transport for one protocol fails app.ready() with SWY_ERR_COMPANION naming both plugins', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(switchyard)
  await app.register(h2Connect)
  app.register(fp(async (instance) => {
    appStateOf(instance)!.registerTransport('http2', transport, 'my-h2')
  }, { name: 'my-h2', dependencies: ['@switchyard/core'] }))
  await assert.rejects(async () => { await app.ready() }, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SWY_ERR_COMPANION')
    assert.match(err.message, /my-h2/)
    assert.match(err.message, /@switchyard\/h2-connect/)
    return true
  })
})

test('a second provider of the useWebsocket mode fails app.ready() with SWY_ERR_COMPANION', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(switchyard)
  await app.register(websocketTcp)
  app.register(fp(async (instance) => {
    appStateOf(instance)!.registerUpgradeMode('useWebsocket', () => {}, 'another-legacy')
  }, { name: 'another-legacy', dependencies: ['@switchyard/core'] }))
  await assert.rejects(async () => { await app.ready() }, { code: 'SWY_ERR_COMPANION' })
})

test('a transport without open() is refused when it is registered', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(switchyard)
  app.register(fp(async (instance) => {
    appStateOf(instance)!.registerTransport('http3', {} as never, 'broken')
  }, { name: 'broken' }))
  await assert.rejects(async () => { await app.ready() }, (err: Error & { code?: string }) => err.code === 'SWY_ERR_COMPANION' && /open\(\)/.test(err.message))
})

test('the main entry exports what an application uses and nothing of the companion API', async () => {
  const main = await import('@switchyard/core')
  assert.deepEqual(Object.keys(main).sort(), ['FilterStatus', 'default', 'errors', 'prometheusHandler', 'proxy', 'switchyard'])
})
