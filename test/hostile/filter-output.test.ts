import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy, type Filter } from '@switchyard/core'
import { startProxy, cluster } from '../helpers/start-proxy.ts'
import { createUpgradeEchoServer } from '../helpers/upgrade-echo.ts'
import { httpUpstream } from '../helpers/http-upstream.ts'
import { listen } from '../helpers/net.ts'
import { rawClient, requestHead, upgradeHead } from '../helpers/raw-client.ts'
import { gaugesAtZero } from '../helpers/leak-check.ts'

/**
 * A filter's output meets the wire where the chain hands headers or bytes to the router or the client.
 * Whatever a filter puts there, the stream ends with a local reply (500 before the response head) or a
 * reset (after it), the coded error reaches onClose, and the process keeps serving.
 */

const CRLF_VALUE = 'a\r\nx-injected: 1'

function recorder (): { filter: Filter, errors: Array<string | undefined> } {
  const errors: Array<string | undefined> = []
  return { errors, filter: { name: 'recorder', onClose (_ctx, error) { errors.push((error as { code?: string } | undefined)?.code) } } }
}

async function upgradeFront (t: Parameters<typeof startProxy>[0], filters: Filter[]): Promise<Awaited<ReturnType<typeof startProxy>>> {
  const echo = createUpgradeEchoServer()
  const port = await listen(t, echo)
  return await startProxy(t, { clusters: { app: cluster(port) }, upgradeConfigs: [{ upgradeType: 'foo' }], filters }, (app) => {
    app.get('/up', { upstream: { cluster: 'app' } }, proxy)
  })
}

async function servesNext (port: number, t: Parameters<typeof startProxy>[0]): Promise<void> {
  const next = await rawClient(t, port, upgradeHead('/up', 'foo'))
  const head = await next.head()
  assert.equal(head.status, 101, 'the next upgrade is served')
  next.socket.destroy()
}

test('a CR/LF value a filter sets on an upgrade request gets 500, never reaches the upstream, and the next upgrade is served', async (t) => {
  const seen: string[] = []
  const echo = createUpgradeEchoServer()
  echo.on('connection', () => seen.push('connection'))
  const port = await listen(t, echo)
  const rec = recorder()
  const evil: Filter = { name: 'evil', onRequestHeaders (ctx, headers) { if (ctx.request.headers['x-evil'] !== undefined) headers['x-bad'] = CRLF_VALUE } }
  const front = await startProxy(t, { clusters: { app: cluster(port) }, upgradeConfigs: [{ upgradeType: 'foo' }], filters: [rec.filter, evil] }, (app) => {
    app.get('/up', { upstream: { cluster: 'app' } }, proxy)
  })
  const client = await rawClient(t, front.port, upgradeHead('/up', 'foo', { 'x-evil': '1' }))
  const head = await client.head()
  assert.equal(head.status, 500)
  await client.done
  assert.deepEqual(seen, [], 'no upstream connection')
  assert.deepEqual(rec.errors, ['SWY_ERR_INVALID_HEADER'])
  await servesNext(front.port, t)
  await gaugesAtZero([front.app])
})

test('an invalid header name a filter sets on the 101 gets 500 instead of the 101', async (t) => {
  const rec = recorder()
  const evil: Filter = { name: 'evil', onResponseHeaders (ctx, status, headers) { if (status === 101 && ctx.request.headers['x-evil'] !== undefined) headers['bad name'] = 'x' } }
  const front = await upgradeFront(t, [rec.filter, evil])
  const client = await rawClient(t, front.port, upgradeHead('/up', 'foo', { 'x-evil': '1' }))
  const head = await client.head()
  assert.equal(head.status, 500)
  await client.done
  assert.deepEqual(rec.errors, ['SWY_ERR_INVALID_HEADER'])
  await servesNext(front.port, t)
  await gaugesAtZero([front.app])
})

test('a filter that replaces tunnel data with something that is not a Buffer ends that tunnel, and only that one', async (t) => {
  const rec = recorder()
  const evil: Filter = {
    name: 'evil',
    onResponseData (ctx, chunk) { if (chunk.toString() === 'boom') ctx.replaceData('not a buffer' as unknown as Buffer) }
  }
  const front = await upgradeFront(t, [rec.filter, evil])
  const client = await rawClient(t, front.port, upgradeHead('/up', 'foo'))
  assert.equal((await client.head()).status, 101)
  client.socket.write('boom')
  await client.done
  assert.deepEqual(rec.errors, ['SWY_ERR_FILTER'])
  await servesNext(front.port, t)
  await gaugesAtZero([front.app])
})

test('a filter that injects something that is not a Buffer toward the upstream gets 500 before the 101', async (t) => {
  const rec = recorder()
  const evil: Filter = { name: 'evil', onRequestData (ctx) { ctx.injectRequestData(42 as unknown as Buffer) } }
  const front = await upgradeFront(t, [rec.filter, evil])
  const client = await rawClient(t, front.port, upgradeHead('/up', 'foo') + 'early')
  assert.equal((await client.head()).status, 500)
  await client.done
  assert.deepEqual(rec.errors, ['SWY_ERR_FILTER'])
  await gaugesAtZero([front.app])
})

test('a CR/LF value a filter sets on a proxied request gets 500 and the upstream never sees the request', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const rec = recorder()
  const evil: Filter = { name: 'evil', onRequestHeaders (_ctx, headers) { headers['x-bad'] = CRLF_VALUE } }
  const front = await startProxy(t, { clusters: { app: cluster(upstream.port) }, filters: [rec.filter, evil] }, (app) => {
    app.get('/plain', { upstream: { cluster: 'app' } }, proxy)
  })
  const res = await fetch(`${front.url}/plain`)
  assert.equal(res.status, 500)
  await res.arrayBuffer()
  assert.equal(upstream.requests.length, 0)
  assert.deepEqual(rec.errors, ['SWY_ERR_INVALID_HEADER'])
})

test('an invalid header a filter sets on a proxied response gets 500 and the process keeps serving', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const rec = recorder()
  const evil: Filter = { name: 'evil', onResponseHeaders (ctx, _status, headers) { if (ctx.request.url === '/plain?evil') headers['x-bad'] = CRLF_VALUE } }
  const front = await startProxy(t, { clusters: { app: cluster(upstream.port) }, filters: [rec.filter, evil] }, (app) => {
    app.get('/plain', { upstream: { cluster: 'app' } }, proxy)
  })
  const bad = await fetch(`${front.url}/plain?evil`)
  assert.equal(bad.status, 500)
  assert.equal(bad.headers.get('x-injected'), null)
  await bad.arrayBuffer()
  assert.deepEqual(rec.errors, ['SWY_ERR_INVALID_HEADER'])
  const good = await fetch(`${front.url}/plain`)
  assert.equal(good.status, 200)
  await good.arrayBuffer()
})

test('a header a filter breaks on a local reply is dropped and the reply still goes out', async (t) => {
  const upstream = await httpUpstream(t, 'app')
  const deny: Filter = { name: 'deny', onRequestHeaders (ctx) { ctx.sendLocalReply(403, 'no') } }
  const evil: Filter = { name: 'evil', onResponseHeaders (_ctx, _status, headers) { headers['x-bad'] = CRLF_VALUE; headers['x-good'] = 'yes' } }
  const front = await startProxy(t, { clusters: { app: cluster(upstream.port) }, filters: [evil, deny] }, (app) => {
    app.get('/plain', { upstream: { cluster: 'app' } }, proxy)
  })
  const client = await rawClient(t, front.port, requestHead('GET', '/plain', { host: 'x', connection: 'close' }))
  const head = await client.head()
  assert.equal(head.status, 403)
  assert.equal(head.headers['x-good'], 'yes')
  assert.equal(head.headers['x-bad'], undefined)
  assert.equal(head.headers['x-injected'], undefined)
  await client.done
})
