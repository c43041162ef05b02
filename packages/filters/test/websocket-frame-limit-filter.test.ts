import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FilterStatus } from '@switchyard/core'
import { createWebSocketFrameLimitFilter, websocketMessagesKey, type WebSocketFrameLimitOptions } from '../src/index.ts'
import { fakeContext, prng, randomChunks } from './fake-context.ts'
import { closeCodeOf, deflated, frame } from './frames.ts'

/** A stream whose handshake is done: request headers, then the 101 (with `extensions` if given). */
function opened (options: WebSocketFrameLimitOptions, extensions?: string) {
  const filter = createWebSocketFrameLimitFilter(options)
  const fake = fakeContext()
  assert.equal(filter.onRequestHeaders!(fake.ctx, {}, false), undefined)
  const headers: Record<string, string> = extensions === undefined ? {} : { 'sec-websocket-extensions': extensions }
  filter.onResponseHeaders!(fake.ctx, 101, headers, false)
  return { filter, ...fake }
}

const mid = Buffer.alloc(300, 0x62)
const clientStream = Buffer.concat([
  frame({ opcode: 1, payload: 'one' }),
  frame({ opcode: 2, payload: mid }),
  frame({ opcode: 2, payload: Buffer.alloc(70_000) }),
  frame({ opcode: 1, payload: 'a', fin: false }),
  frame({ opcode: 9, payload: 'between' }),
  frame({ opcode: 0, payload: 'b' })
])

test('forwards a valid stream byte for byte in any chunking, passing most chunks as they are', async () => {
  const random = prng(42)
  for (let round = 0; round < 150; round++) {
    const { filter, rec, drive, ctx } = opened({ maxMessageBytes: 100_000 })
    const chunks = randomChunks(clientStream, random, round % 10 === 0 ? 8 : 2048)
    for (const chunk of chunks) {
      const status = await drive('request', filter, chunk)
      assert.ok(status === undefined || status === FilterStatus.Continue || status === FilterStatus.StopIteration)
    }
    assert.ok(Buffer.concat(rec.toUpstream).equals(clientStream), `round ${round}`)
    assert.deepEqual(ctx.state[websocketMessagesKey], { fromDownstream: 4, fromUpstream: 0 })
    assert.equal(rec.localReplies.length + rec.toDownstream.length, 0)
  }
})

test('a chunk holding whole frames is passed on unchanged, without a copy', async () => {
  const { filter, ctx, takeReplacement } = opened({ maxMessageBytes: 1000 })
  const chunk = Buffer.concat([frame({ opcode: 1, payload: 'x' }), frame({ opcode: 1, payload: 'y' })])
  assert.equal(filter.onRequestData!(ctx, chunk, false), FilterStatus.Continue)
  assert.equal(takeReplacement(), undefined)
})

test('a message over maxMessageBytes closes both sides with 1009 after the whole frames before it', async () => {
  const good = Buffer.concat([frame({ opcode: 1, payload: 'ok' }), frame({ opcode: 2, payload: mid })])
  const stream = Buffer.concat([good, frame({ opcode: 2, payload: Buffer.alloc(2000) }), frame({ opcode: 1, payload: 'after' })])
  const random = prng(7)
  for (let round = 0; round < 150; round++) {
    const { filter, rec, drive } = opened({ maxMessageBytes: 1024 })
    let last: unknown
    for (const chunk of randomChunks(stream, random, round % 2 === 0 ? 5 : 900)) last = await drive('request', filter, chunk)
    assert.equal(last, FilterStatus.StopIteration)
    const up = Buffer.concat(rec.toUpstream)
    assert.ok(up.subarray(0, good.length).equals(good), `round ${round}: the frames before the fault go on`)
    assert.equal(up.length, good.length + 8, 'then one masked close frame')
    assert.equal(closeCodeOf(up.subarray(good.length)), 1009)
    assert.equal(closeCodeOf(Buffer.concat(rec.toDownstream)), 1009)
    assert.deepEqual(rec.ended, { upstream: true, downstream: true })
  }
})

test('a server message over the limit closes the client with 1009 and the upstream with a masked 1009', async () => {
  const { filter, rec, drive } = opened({ maxMessageBytes: 10 })
  assert.equal(await drive('response', filter, frame({ opcode: 1, payload: 'short', mask: false })), FilterStatus.Continue)
  assert.equal(await drive('response', filter, frame({ opcode: 1, payload: 'far too long for it', mask: false })), FilterStatus.StopIteration)
  assert.equal(closeCodeOf(rec.toDownstream[1]!), 1009)
  assert.equal((rec.toUpstream[0]![1]! & 0x80), 0x80, 'toward the server a close frame is masked')
  assert.equal(closeCodeOf(rec.toUpstream[0]!), 1009)
  assert.equal(await drive('request', filter, frame({ opcode: 1, payload: 'late' })), FilterStatus.StopIteration, 'nothing passes after the close')
})

test('more than maxMessagesPerSecond messages from the downstream closes with 1008', async () => {
  const { filter, rec, drive } = opened({ maxMessagesPerSecond: 3 })
  for (let i = 0; i < 3; i++) assert.equal(await drive('request', filter, frame({ opcode: 1, payload: `m${i}` })), FilterStatus.Continue)
  assert.equal(await drive('request', filter, frame({ opcode: 1, payload: 'm3' })), FilterStatus.StopIteration)
  assert.equal(closeCodeOf(rec.toDownstream[0]!), 1008)
  assert.equal(closeCodeOf(rec.toUpstream.at(-1)!), 1008)
})

test('a protocol error closes both sides with 1002', async () => {
  const { filter, rec, drive } = opened({})
  assert.equal(await drive('request', filter, frame({ opcode: 1, payload: 'unmasked', mask: false })), FilterStatus.StopIteration)
  assert.equal(closeCodeOf(rec.toDownstream[0]!), 1002)
  assert.equal(closeCodeOf(rec.toUpstream[0]!), 1002)
})

test('a violation in bytes sent before the 101 is answered 413 locally', async () => {
  const filter = createWebSocketFrameLimitFilter({ maxMessageBytes: 4 })
  const { ctx, rec, drive } = fakeContext()
  filter.onRequestHeaders!(ctx, {}, false)
  assert.equal(await drive('request', filter, frame({ opcode: 2, payload: 'too long' })), FilterStatus.StopIteration)
  assert.deepEqual(rec.localReplies.map((r) => r.status), [413])
})

test('a non-101 answer ends frame reading: its body passes untouched', async () => {
  const filter = createWebSocketFrameLimitFilter({ maxMessageBytes: 1 })
  const { ctx, drive, rec } = fakeContext()
  filter.onRequestHeaders!(ctx, {}, false)
  filter.onResponseHeaders!(ctx, 400, {}, false)
  assert.equal(await drive('response', filter, Buffer.from('not frames at all')), FilterStatus.Continue)
  assert.equal(rec.toDownstream.length, 1)
})

test('streams that are not WebSocket upgrades are not looked at', async () => {
  const filter = createWebSocketFrameLimitFilter({ maxMessageBytes: 1 })
  for (const upgradeType of [null, 'foo']) {
    const { ctx, drive } = fakeContext({ upgradeType })
    filter.onRequestHeaders!(ctx, {}, false)
    filter.onResponseHeaders!(ctx, 101, {}, false)
    assert.equal(await drive('request', filter, Buffer.from('anything at all')), FilterStatus.Continue)
    assert.equal(ctx.state[websocketMessagesKey], undefined)
  }
})

test('with permessage-deflate the compressed size is what is limited', async () => {
  const text = 'a'.repeat(5000)
  const { filter, rec, drive } = opened({ maxMessageBytes: 100 }, 'permessage-deflate; client_max_window_bits=15')
  assert.equal(await drive('request', filter, frame({ opcode: 1, payload: deflated(text), rsv1: true })), FilterStatus.Continue)
  assert.equal(rec.toDownstream.length, 0)
  const noDeflate = opened({ maxMessageBytes: 100 })
  assert.equal(await noDeflate.drive('request', noDeflate.filter, frame({ opcode: 1, payload: deflated(text), rsv1: true })), FilterStatus.StopIteration)
  assert.equal(closeCodeOf(noDeflate.rec.toDownstream[0]!), 1002, 'RSV1 without the extension is a protocol error')
})

test('with inflate a message is bounded by its inflated size, whichever fragment crosses it', async () => {
  const { filter, rec, drive } = opened({ maxMessageBytes: 1000, inflate: true, maxInflatedBytes: 4000 }, 'permessage-deflate')
  const small = deflated('b'.repeat(3000))
  const promise = filter.onRequestData!(fakeContext().ctx, Buffer.alloc(0), false)
  assert.equal(promise, FilterStatus.Continue, 'another stream has its own state')
  for (const chunk of randomChunks(frame({ opcode: 1, payload: small, rsv1: true }), prng(9), 4)) {
    await drive('request', filter, chunk)
  }
  assert.equal(rec.toDownstream.length, 0, 'under the inflated bound')
  const bomb = deflated('c'.repeat(50_000))
  assert.ok(bomb.length < 1000, 'small on the wire')
  // Whichever fragment crosses the inflated bound is the one taken, and both sides are closed.
  const statuses = [
    await drive('request', filter, frame({ opcode: 1, payload: bomb.subarray(0, 2), rsv1: true, fin: false })),
    await drive('request', filter, frame({ opcode: 0, payload: bomb.subarray(2) }))
  ]
  assert.equal(statuses.at(-1), FilterStatus.StopIteration)
  assert.equal(closeCodeOf(rec.toDownstream.at(-1)!), 1009)
  assert.equal(closeCodeOf(rec.toUpstream.at(-1)!), 1009)
})

test('aborts the stream if the peers do not finish closing within closeTimeout, and onClose clears that', async (t) => {
  // The close timer is driven by mocked time: no waiting on the clock.
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const { filter, rec, drive, ctx } = opened({ maxMessageBytes: 1, closeTimeout: 20 })
  await drive('request', filter, frame({ opcode: 1, payload: 'xx' }))
  t.mock.timers.tick(19)
  assert.equal(rec.aborted.length, 0, 'not before closeTimeout')
  t.mock.timers.tick(1)
  assert.equal(rec.aborted.length, 1)
  const second = opened({ maxMessageBytes: 1, closeTimeout: 20 })
  await second.drive('request', second.filter, frame({ opcode: 1, payload: 'xx' }))
  second.filter.onClose!(second.ctx)
  t.mock.timers.tick(40)
  assert.equal(second.rec.aborted.length, 0)
  filter.onClose!(ctx)
})

test('refuses options that are not positive numbers', () => {
  assert.throws(() => createWebSocketFrameLimitFilter({ maxMessageBytes: 0 }), { code: 'SWY_ERR_FILTER_OPTIONS' })
  assert.throws(() => createWebSocketFrameLimitFilter({ maxMessagesPerSecond: -1 }), { code: 'SWY_ERR_FILTER_OPTIONS' })
})
