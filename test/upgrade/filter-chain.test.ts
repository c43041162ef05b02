import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxy, FilterStatus, type Filter, type FilterContext } from '@switchyard/core'
import { startProxy, cluster, nextTunnelClose } from '../helpers/start-proxy.ts'
import { rawUpgradeEcho, rawUpstream, accept, headerOf } from '../helpers/echo-upstream.ts'
import { watchProxySockets, heldBetween, flood } from '../helpers/flood.ts'
import { rawClient, upgradeHead, wsUpgradeHead, parseHead } from '../helpers/raw-client.ts'

interface Record {
  events: string[]
  requestBytes: Buffer[]
  responseBytes: Buffer[]
  types: Array<string | null>
  closes: number
}

/** A filter that records everything it is shown. */
function recorder (name: string): { filter: Filter, seen: Record } {
  const seen: Record = { events: [], requestBytes: [], responseBytes: [], types: [], closes: 0 }
  const filter: Filter = {
    name,
    onRequestHeaders (ctx, headers, endStream) {
      seen.types.push(ctx.upgradeType)
      seen.events.push(`${name}:requestHeaders ${String(headers.upgrade ?? '-')} end=${endStream}`)
    },
    onRequestData (_ctx, chunk) { seen.requestBytes.push(Buffer.from(chunk)) },
    onResponseHeaders (_ctx, status) { seen.events.push(`${name}:responseHeaders ${status}`) },
    onResponseData (_ctx, chunk) { seen.responseBytes.push(Buffer.from(chunk)) },
    onClose () { seen.closes++ }
  }
  return { filter, seen }
}

test('runs the default chain for plain requests and for upgrades whose config names no filters', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { filter, seen } = recorder('default')
  const { port, url } = await startProxy(t, { clusters: { foo: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }], filters: [filter] }, (app) => {
    app.get('/foo', { upstream: { cluster: 'foo' } }, proxy)
  })
  const res = await fetch(`${url}/foo`)
  assert.equal(await res.text(), 'plain GET /foo')
  const client = await rawClient(t, port, wsUpgradeHead('/foo'))
  assert.equal((await client.head()).status, 101)
  assert.deepEqual(seen.types, [null, 'websocket'])
  assert.ok(seen.events.includes('default:responseHeaders 200'))
  assert.ok(seen.events.includes('default:responseHeaders 101'))
  assert.equal(Buffer.concat(seen.responseBytes).toString(), 'plain GET /foo')
})

test('replaces the default chain with the chain an upgrade type names', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const byDefault = recorder('default')
  const forFoo = recorder('foo')
  const { port } = await startProxy(t, {
    clusters: { c: cluster(upstream.port) },
    upgradeConfigs: [{ upgradeType: 'foo', filters: [forFoo.filter] }, { upgradeType: 'websocket' }],
    filters: [byDefault.filter]
  }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const foo = await rawClient(t, port, upgradeHead('/c', 'foo'))
  assert.equal((await foo.head()).status, 101)
  assert.deepEqual(forFoo.seen.types, ['foo'])
  assert.deepEqual(byDefault.seen.types, [])
  const ws = await rawClient(t, port, wsUpgradeHead('/c'))
  assert.equal((await ws.head()).status, 101)
  assert.deepEqual(byDefault.seen.types, ['websocket'])
  assert.deepEqual(forFoo.seen.types, ['foo'])
})

test('sends an upgrade whose type names an empty chain through the router only', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const denyAll: Filter = { name: 'deny-all', onRequestHeaders (ctx) { ctx.sendLocalReply(401) } }
  const { port } = await startProxy(t, {
    clusters: { c: cluster(upstream.port) },
    upgradeConfigs: [{ upgradeType: 'foo', filters: [] }, { upgradeType: 'websocket' }],
    filters: [denyAll]
  }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const foo = await rawClient(t, port, upgradeHead('/c', 'foo') + 'raw')
  const head = await foo.headAnd(3)
  assert.equal(head.status, 101)
  assert.equal(head.rest.toString(), 'raw')
  const ws = await rawClient(t, port, wsUpgradeHead('/c'))
  await ws.done
  assert.equal(parseHead(ws.received)?.status, 401)
})

test('shows filters the request headers, every client byte, the 101, every upstream byte and the close', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { filter, seen } = recorder('rec')
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [filter] }] }, (app) => {
    app.post('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const closedTunnel = nextTunnelClose()
  const client = await rawClient(t, port, upgradeHead('/c', 'foo', {}, 'POST') + 'early|')
  await client.head()
  const sent = ['one|', Buffer.alloc(300_000, 'z').toString(), '|two']
  for (const part of sent) client.socket.write(part)
  const expected = 'early|' + sent.join('')
  await client.headAnd(expected.length)
  client.socket.end()
  await client.done
  client.socket.destroy()
  await closedTunnel
  assert.equal(seen.events[0], 'rec:requestHeaders foo end=false')
  assert.equal(seen.events[1], 'rec:responseHeaders 101')
  assert.equal(Buffer.concat(seen.requestBytes).toString(), expected)
  assert.equal(Buffer.concat(seen.responseBytes).toString(), expected)
  assert.equal(seen.closes, 1)
})

test('runs request callbacks in chain order and response callbacks in reverse', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const a = recorder('a')
  const b = recorder('b')
  const events: string[] = []
  const log = (f: Filter): Filter => ({
    name: f.name,
    onRequestHeaders: (...args) => { events.push(`${f.name} request`); return f.onRequestHeaders?.(...args) },
    onResponseHeaders: (...args) => { events.push(`${f.name} response`); return f.onResponseHeaders?.(...args) }
  })
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [log(a.filter), log(b.filter)] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/c', 'foo'))
  assert.equal((await client.head()).status, 101)
  assert.deepEqual(events, ['a request', 'b request', 'b response', 'a response'])
})

test('lets a filter mutate request headers before the upstream and the 101 before the client', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const mutate: Filter = {
    name: 'mutate',
    onRequestHeaders (_ctx, headers) {
      headers['x-added'] = 'by-filter'
      delete headers['x-secret']
    },
    onResponseHeaders (_ctx, status, headers) {
      if (status === 101) headers['x-tunnel'] = 'yes'
    }
  }
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [mutate] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/c', 'foo', { 'X-Secret': 'do not forward' }))
  const head = await client.head()
  assert.equal(head.status, 101)
  assert.equal(head.headers['x-tunnel'], 'yes')
  assert.equal(headerOf(upstream.heads[0]!, 'x-added'), 'by-filter')
  assert.equal(headerOf(upstream.heads[0]!, 'x-secret'), undefined)
})

test('lets a filter replace upgraded data in both directions', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const upper: Filter = {
    name: 'upper',
    onRequestData (ctx, chunk) { ctx.replaceData(Buffer.from(chunk.toString().toUpperCase())) },
    onResponseData (ctx, chunk) { ctx.replaceData(Buffer.from(`[${chunk.toString()}]`)) }
  }
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [upper] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/c', 'foo'))
  await client.head()
  client.socket.write('hello')
  const head = await client.headAnd(7)
  assert.equal(head.rest.toString(), '[HELLO]')
  assert.equal(upstream.after.get(0)?.toString(), 'HELLO')
})

test('answers 401 locally from a request-headers filter before anything reaches the upstream', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const auth: Filter = {
    name: 'auth',
    onRequestHeaders (ctx, headers) {
      if (headers.authorization !== 'Bearer ok') ctx.sendLocalReply(401, 'denied', { 'www-authenticate': 'Bearer' })
    }
  }
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [auth] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/c', 'foo') + 'payload')
  await client.done
  const head = parseHead(client.received)
  assert.equal(head?.status, 401)
  assert.equal(head?.headers['www-authenticate'], 'Bearer')
  assert.equal(head?.rest.toString(), 'denied')
  assert.equal(upstream.heads.length, 0, 'the request head reached the upstream')
  // sendLocalReply ends the stream: the router must not even open an upstream connection.
  assert.equal(upstream.connections, 0, 'the router opened an upstream connection after a local reply')
  const ok = await rawClient(t, port, upgradeHead('/c', 'foo', { Authorization: 'Bearer ok' }))
  assert.equal((await ok.head()).status, 101)
})

test('answers locally from a filter that also stops iteration, without contacting the upstream', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const auth: Filter = {
    name: 'auth',
    onRequestHeaders (ctx) {
      ctx.sendLocalReply(403, 'forbidden')
      return FilterStatus.StopIteration
    }
  }
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [auth] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/c', 'foo'))
  await client.done
  assert.equal(parseHead(client.received)?.status, 403)
  assert.equal(parseHead(client.received)?.rest.toString(), 'forbidden')
  assert.equal(upstream.connections, 0)
})

test('answers 413 from a buffering filter when an upgrade sends more than its limit, before the upstream sees it', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const limit = 1024
  const buffer: Filter = {
    name: 'buffer',
    // Holds the headers (and so the router) until the body is complete, as an HTTP buffer filter does.
    onRequestHeaders () { return FilterStatus.StopIteration },
    onRequestData (ctx, chunk) {
      const held = ((ctx.state.held as number | undefined) ?? 0) + chunk.length
      ctx.state.held = held
      if (held > limit) ctx.sendLocalReply(413, 'too large')
      return FilterStatus.StopIteration
    }
  }
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket' }], filters: [buffer] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawClient(t, port, wsUpgradeHead('/c') + 'x'.repeat(2048))
  await client.done
  assert.equal(parseHead(client.received)?.status, 413)
  assert.equal(upstream.connections, 0)
})

test('parks iteration on a filter promise and goes on when it settles', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const order: string[] = []
  const slow: Filter = {
    name: 'slow',
    async onRequestHeaders (_ctx, headers) {
      await new Promise((resolve) => setImmediate(resolve))
      headers['x-checked'] = 'async'
      order.push('slow done')
    }
  }
  const after: Filter = { name: 'after', onRequestHeaders () { order.push('after') } }
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [slow, after] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/c', 'foo'))
  assert.equal((await client.head()).status, 101)
  assert.deepEqual(order, ['slow done', 'after'])
  assert.equal(headerOf(upstream.heads[0]!, 'x-checked'), 'async')
})

test('runs the default chain on plain proxied requests, body and response included', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const { filter, seen } = recorder('plain')
  const { url } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, filters: [filter] }, (app) => {
    app.post('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const res = await fetch(`${url}/c`, { method: 'POST', body: 'request body', headers: { 'content-type': 'text/plain' } })
  assert.equal(await res.text(), 'plain POST /c')
  assert.deepEqual(seen.types, [null])
  assert.equal(Buffer.concat(seen.requestBytes).toString(), 'request body')
  assert.equal(Buffer.concat(seen.responseBytes).toString(), 'plain POST /c')
  assert.ok(seen.events.includes('plain:responseHeaders 200'))
})

test('lets a buffering filter of the default chain leave alone an upgrade type with its own chain', async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const buffer: Filter = {
    name: 'buffer',
    onRequestHeaders () { return FilterStatus.StopIteration },
    onRequestData (ctx, chunk) {
      const held = ((ctx.state.held as number | undefined) ?? 0) + chunk.length
      ctx.state.held = held
      if (held > 1024) ctx.sendLocalReply(413, 'too large')
      return FilterStatus.StopIteration
    }
  }
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'websocket', filters: [] }], filters: [buffer] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const payload = 'x'.repeat(2048)
  const client = await rawClient(t, port, wsUpgradeHead('/c') + payload)
  const head = await client.headAnd(payload.length)
  assert.equal(head.status, 101)
  assert.equal(head.rest.toString(), payload)
})

test('lets a filter pause both directions and resume them, holding backpressure meanwhile', async (t) => {
  const upstream = await rawUpstream(t)
  let paused: FilterContext | undefined
  const pauser: Filter = {
    name: 'pauser',
    onResponseHeaders (ctx, status) {
      if (status === 101) { ctx.pause(); paused = ctx }
    }
  }
  const { port, app } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [pauser] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const sockets = watchProxySockets(t, app)
  const client = await rawClient(t, port, upgradeHead('/c', 'foo'))
  const conn = await upstream.next()
  accept(conn)
  const headLength = (await client.head()).raw.length
  assert.ok(paused !== undefined, 'the filter saw no 101')
  // The client keeps reading; while the filter holds the tunnel, the upstream's flood stalls in the kernel.
  const down = sockets.downstream()
  const up = sockets.upstream(upstream.port)
  let maxHeld = 0
  const result = await flood(conn.socket, 256 * 1024 * 1024, () => { maxHeld = Math.max(maxHeld, heldBetween(up, down)) }, up)
  assert.ok(result.stalled, 'the upstream sent everything while the filter held the tunnel')
  assert.ok(maxHeld <= 4 * 64 * 1024, `the proxy held ${maxHeld} bytes while paused`)
  assert.equal(client.received.length - headLength, 0, 'upstream bytes reached the client while the filter held the tunnel')
  paused.resume()
  conn.socket.end()
  await client.done
  assert.equal(client.received.length - headLength, result.written)
})

test('ends the stream when a filter answers the 101 with a local reply at once, so no gauge stays up', { timeout: 10_000 }, async (t) => {
  const upstream = await rawUpgradeEcho(t)
  const refuse101: Filter = {
    name: 'refuse-101',
    onResponseHeaders (ctx, status) { if (status === 101) ctx.sendLocalReply(502, 'not today') }
  }
  const { port, app } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [refuse101] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const closed = nextTunnelClose()
  const client = await rawClient(t, port, upgradeHead('/c', 'foo'))
  await client.done
  assert.equal(parseHead(client.received)?.status, 502)
  await closed
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_active, 0)
  assert.equal(app.switchyard.stats()['upgrade.foo.downstream_cx_upgrades_active'], 0)
})

test('delivers the last bytes an async data filter still holds when the other side has already closed', { timeout: 10_000 }, async (t) => {
  const upstream = await rawUpstream(t)
  // Each response chunk waits a few turns of the event loop inside the filter before it goes on.
  const slow: Filter = {
    name: 'slow',
    async onResponseData () {
      for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [slow] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/c', 'foo'))
  const conn = await upstream.next()
  accept(conn)
  const headLength = (await client.head()).raw.length
  // The client half-closes first; the upstream then sends its last bytes and closes at once.
  client.socket.end()
  await new Promise<void>((resolve) => conn.socket.once('end', () => resolve()))
  conn.socket.end('tail')
  await client.done
  assert.equal(client.received.subarray(headLength).toString(), 'tail')
})

test('a tunnel chunk a filter stopped reaches the upstream, in order, once the filter resumes', async (t) => {
  const upstream = await rawUpstream(t)
  let sawHeld!: () => void
  const held = new Promise<void>((resolve) => { sawHeld = resolve })
  const holder: Filter = {
    name: 'holder',
    onRequestData (_ctx, chunk) {
      if (!chunk.toString().startsWith('held')) return
      sawHeld()
      return FilterStatus.StopIteration
    },
    // The upstream's first bytes are the signal to let the stopped chunk go (Envoy's continueDecoding).
    onResponseData (ctx) { ctx.resume() }
  }
  const { port } = await startProxy(t, { clusters: { c: cluster(upstream.port) }, upgradeConfigs: [{ upgradeType: 'foo', filters: [holder] }] }, (app) => {
    app.get('/c', { upstream: { cluster: 'c' } }, proxy)
  })
  const client = await rawClient(t, port, upgradeHead('/c', 'foo'))
  const conn = await upstream.next()
  accept(conn)
  await client.head()
  let got = ''
  conn.socket.on('data', (d: Buffer) => { got += d.toString() })
  // Read through a call: the data listener changes it behind the compiler's narrowing.
  const received = (): string => got
  client.socket.write('held bytes')
  await held
  assert.equal(received(), '', 'the stopped chunk went on before the filter resumed')
  conn.socket.write('release')
  await client.until((d) => d.toString().endsWith('release'))
  while (received() !== 'held bytes') await new Promise((resolve) => conn.socket.once('data', resolve))
  client.socket.write(' then more')
  while (received() !== 'held bytes then more') await new Promise((resolve) => conn.socket.once('data', resolve))
})
