import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { FilterChain, type ChainOwner } from '../src/filter/filter-chain.ts'
import { FilterStatus, type Filter } from '../src/filter/filter.ts'
import type { Headers } from '../src/headers.ts'

const log = { error () {}, warn () {}, info () {}, debug () {} } as unknown as FastifyBaseLogger

function harness (filters: Filter[], highWaterMark = 1024) {
  const events: string[] = []
  const replies: Array<{ from: number, status: number }> = []
  let sinkAccepts = true
  const owner: ChainOwner = {
    localReply: (from, status) => { replies.push({ from, status }) },
    abort: (err) => { events.push(`abort:${err.message}`) },
    pause: () => events.push('pause'),
    resume: () => events.push('resume'),
    drained: (d) => events.push(`drained:${d}`)
  }
  const chain = new FilterChain({
    filters,
    upgradeType: 'websocket',
    route: { url: '/x', method: 'GET' },
    request: {} as FastifyRequest,
    log,
    owner,
    highWaterMark,
    upstreamSink: {
      headers: (_s, h) => events.push(`up:headers:${JSON.stringify(h)}`),
      data: (c, end) => { events.push(`up:data:${c.toString()}${end ? ':end' : ''}`); return sinkAccepts }
    },
    downstreamSink: {
      headers: (s) => events.push(`down:headers:${s}`),
      data: (c, end) => { events.push(`down:data:${c.toString()}${end ? ':end' : ''}`); return true }
    }
  })
  return { chain, events, replies, setSink: (v: boolean) => { sinkAccepts = v } }
}

test('request callbacks run in order and response callbacks in reverse', () => {
  const order: string[] = []
  const mk = (name: string): Filter => ({
    name,
    onRequestHeaders: () => { order.push(`${name}:req`) },
    onResponseHeaders: () => { order.push(`${name}:res`) }
  })
  const { chain } = harness([mk('a'), mk('b'), mk('c')])
  chain.requestHeaders({}, false)
  chain.responseHeaders(101, {}, false)
  assert.deepEqual(order, ['a:req', 'b:req', 'c:req', 'c:res', 'b:res', 'a:res'])
})

test('a filter mutates headers in place before the router sees them', () => {
  const { chain, events } = harness([{ name: 'm', onRequestHeaders: (_c, h: Headers) => { h['x-added'] = '1'; delete h.secret } }])
  chain.requestHeaders({ secret: 's', keep: 'k' }, false)
  assert.deepEqual(events, ['up:headers:{"keep":"k","x-added":"1"}'])
})

test('headers parked by StopIteration hold data behind them until resume, in order', () => {
  let ctxRef: Parameters<NonNullable<Filter['onRequestHeaders']>>[0] | undefined
  const seenByStopper: string[] = []
  const { chain, events } = harness([
    { name: 'stop', onRequestHeaders: (ctx) => { ctxRef = ctx; return FilterStatus.StopIteration }, onRequestData: (_c, chunk) => { seenByStopper.push(chunk.toString()) } },
    { name: 'after', onRequestData: () => {} }
  ])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('one'), false)
  chain.requestData(Buffer.from('two'), false)
  assert.deepEqual(events, [])
  assert.deepEqual(seenByStopper, ['one', 'two'], 'the parking filter still sees data')
  ctxRef!.resume()
  assert.deepEqual(events, ['up:headers:{}', 'up:data:one', 'up:data:two'])
  chain.requestData(Buffer.from('three'), false)
  assert.equal(events.at(-1), 'up:data:three')
})

test('a data callback returning StopIteration takes the chunk and replaceData substitutes one', () => {
  const held: Buffer[] = []
  const { chain, events } = harness([{
    name: 'buffer',
    onRequestData: (ctx, chunk, end) => {
      held.push(chunk)
      if (!end) return FilterStatus.StopIteration
      ctx.replaceData(Buffer.concat(held))
    }
  }])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('ab'), false)
  chain.requestData(Buffer.from('cd'), false)
  chain.requestData(Buffer.from('ef'), true)
  assert.deepEqual(events, ['up:headers:{}', 'up:data:abcdef:end'])
})

test('a Promise from a headers callback parks iteration until it settles', async () => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const { chain, events } = harness([{ name: 'async', onRequestHeaders: async () => { await gate } }])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('early'), false)
  assert.deepEqual(events, [])
  release()
  await gate
  await new Promise(setImmediate)
  assert.deepEqual(events, ['up:headers:{}', 'up:data:early'])
})

test('a pending data Promise keeps later chunks from overtaking it', async () => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let first = true
  const seen: string[] = []
  const { chain, events } = harness([{
    name: 'slow',
    onRequestData: (_c, chunk) => {
      seen.push(chunk.toString())
      if (first) { first = false; return gate.then(() => FilterStatus.Continue) }
    }
  }])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('1'), false)
  chain.requestData(Buffer.from('2'), false)
  assert.deepEqual(seen, ['1'], 'the second chunk waits for the first to settle')
  release()
  await gate
  await new Promise(setImmediate)
  assert.deepEqual(events, ['up:headers:{}', 'up:data:1', 'up:data:2'])
  assert.deepEqual(seen, ['1', '2'])
})

test('data queued behind parked headers reports backpressure past the high-water mark', () => {
  let ctxRef: Parameters<NonNullable<Filter['onRequestHeaders']>>[0] | undefined
  const { chain, events } = harness([{ name: 'stop', onRequestHeaders: (ctx) => { ctxRef = ctx; return FilterStatus.StopIteration } }], 8)
  chain.requestHeaders({}, false)
  assert.equal(chain.requestData(Buffer.from('1234'), false), true)
  assert.equal(chain.requestData(Buffer.from('5678'), false), false)
  ctxRef!.resume()
  assert.ok(events.includes('drained:request'))
})

test('the sink answer is the backpressure answer once nothing is queued', () => {
  const { chain, setSink } = harness([])
  chain.requestHeaders({}, false)
  setSink(false)
  assert.equal(chain.requestData(Buffer.from('x'), false), false)
  setSink(true)
  assert.equal(chain.requestData(Buffer.from('y'), false), true)
})

test('a throwing filter answers 500 and aborts the stream', () => {
  const { chain, replies, events } = harness([{ name: 'boom', onRequestHeaders: () => { throw new Error('bad') } }])
  chain.requestHeaders({}, false)
  assert.deepEqual(replies, [{ from: 1, status: 500 }])
  assert.match(events.join(), /abort:Filter "boom" failed: bad/)
})

test('sendLocalReply names the filter that sent it so earlier filters see the response', () => {
  const seen: string[] = []
  const { chain, replies } = harness([
    { name: 'log', onResponseHeaders: (_c, status) => { seen.push(`log:${status}`) } },
    { name: 'auth', onRequestHeaders: (ctx) => { ctx.sendLocalReply(401) }, onResponseHeaders: () => { seen.push('auth') } },
    { name: 'later', onResponseHeaders: () => { seen.push('later') } }
  ])
  chain.requestHeaders({}, false)
  assert.deepEqual(replies, [{ from: 1, status: 401 }])
  chain.localResponse(1, 401, {}, Buffer.alloc(0))
  assert.deepEqual(seen, ['log:401'])
})

test('onClose runs once for every filter, with the error', () => {
  const closed: string[] = []
  const { chain } = harness([
    { name: 'a', onClose: (_c, err) => { closed.push(`a:${err?.message}`) } },
    { name: 'b', onClose: () => { closed.push('b') } }
  ])
  chain.close(new Error('gone'))
  chain.close()
  assert.deepEqual(closed, ['a:gone', 'b'])
})

test('filters without data callbacks leave the data path as a passthrough', () => {
  const { chain } = harness([{ name: 'headers-only', onRequestHeaders: () => {}, onResponseHeaders: () => {} }])
  assert.equal(chain.requestDataPassthrough, true)
  assert.equal(chain.responseDataPassthrough, true)
  const watched = harness([{ name: 'watch', onResponseData: () => {} }])
  assert.equal(watched.chain.requestDataPassthrough, true)
  assert.equal(watched.chain.responseDataPassthrough, false)
})

test('injected data continues from the filter after the injecting one, toward either side', () => {
  const seen: string[] = []
  let ctxRef: Parameters<NonNullable<Filter['onRequestHeaders']>>[0] | undefined
  const { chain, events } = harness([
    { name: 'first', onRequestData: (_c, chunk) => { seen.push(`first:${chunk}`) }, onResponseData: (_c, chunk) => { seen.push(`first:res:${chunk}`) } },
    { name: 'injector', onRequestHeaders: (ctx) => { ctxRef = ctx } },
    { name: 'last', onRequestData: (_c, chunk) => { seen.push(`last:${chunk}`) }, onResponseData: (_c, chunk) => { seen.push(`last:res:${chunk}`) } }
  ])
  chain.requestHeaders({}, false)
  ctxRef!.injectRequestData(Buffer.from('to-up'), true)
  ctxRef!.injectResponseData(Buffer.from('to-down'))
  assert.deepEqual(seen, ['last:to-up', 'first:res:to-down'])
  assert.deepEqual(events, ['up:headers:{}', 'up:data:to-up:end', 'down:data:to-down'])
})

test('data queued behind headers that park again at a later filter reaches that filter', async () => {
  let release!: () => void
  const verified = new Promise<void>((resolve) => { release = resolve })
  const buffered: string[] = []
  const { chain, events } = harness([
    { name: 'async-auth', onRequestHeaders: () => verified },
    {
      name: 'buffer',
      onRequestHeaders: () => FilterStatus.StopIteration,
      onRequestData: (_c, chunk) => { buffered.push(chunk.toString()); return FilterStatus.StopIteration }
    }
  ])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('early'), false)
  assert.deepEqual(buffered, [], 'held while verify is pending')
  release()
  await verified
  await new Promise(setImmediate)
  assert.deepEqual(buffered, ['early'], 'the buffer filter sees the data once auth passed')
  assert.deepEqual(events, [])
})

test('a data callback that resumes its parked headers passes its own chunk on too', () => {
  let body: Buffer[] = []
  const { chain, events } = harness([{
    name: 'buffer',
    onRequestHeaders: () => FilterStatus.StopIteration,
    onRequestData: (ctx, chunk, end) => {
      body.push(chunk)
      if (!end) return FilterStatus.StopIteration
      ctx.replaceData(Buffer.concat(body))
      body = []
      ctx.resume()
    }
  }])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('ab'), false)
  chain.requestData(Buffer.from('cd'), true)
  assert.deepEqual(events, ['up:headers:{}', 'up:data:abcd:end'])
})

test('onClose is told who ended the stream', () => {
  let seen: string | undefined
  const { chain } = harness([{ name: 'log', onClose: (_c, _e, reason) => { seen = reason } }])
  chain.close(undefined, 'upstream')
  assert.equal(seen, 'upstream')
})

test('a data chunk stopped with StopIteration goes on from the next filter when that filter resumes', () => {
  let stopper: Parameters<NonNullable<Filter['onRequestData']>>[0] | undefined
  const after: string[] = []
  const { chain, events } = harness([
    { name: 'stop', onRequestData: (ctx, chunk) => { stopper = ctx; return chunk.toString() === 'hold' ? FilterStatus.StopIteration : FilterStatus.Continue } },
    { name: 'after', onRequestData: (_c, chunk) => { after.push(chunk.toString()) } }
  ])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('hold'), false)
  assert.deepEqual(events, ['up:headers:{}'])
  assert.deepEqual(after, [], 'the filters after it did not see the stopped chunk')
  stopper!.resume()
  assert.deepEqual(after, ['hold'])
  assert.deepEqual(events, ['up:headers:{}', 'up:data:hold'])
})

test('chunks stopped behind parked headers go on in order after the headers when the filter resumes', () => {
  let stopper: Parameters<NonNullable<Filter['onRequestData']>>[0] | undefined
  const { chain, events } = harness([{
    name: 'buffer-like',
    onRequestHeaders: (ctx) => { stopper = ctx; return FilterStatus.StopIteration },
    onRequestData: (ctx, _chunk, end) => {
      if (end) ctx.resume()
      return FilterStatus.StopIteration
    }
  }])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('a'), false)
  chain.requestData(Buffer.from('b'), false)
  assert.deepEqual(events, [])
  chain.requestData(Buffer.from('c'), true)
  assert.deepEqual(events, ['up:headers:{}', 'up:data:a', 'up:data:b', 'up:data:c:end'])
  assert.ok(stopper !== undefined)
})

test('a chunk stopped by a Promise that settles StopIteration goes on when the filter resumes later', async () => {
  let stopper: Parameters<NonNullable<Filter['onRequestData']>>[0] | undefined
  const { chain, events } = harness([{
    name: 'async-stop',
    onRequestData: async (ctx) => { stopper = ctx; await Promise.resolve(); return FilterStatus.StopIteration }
  }])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('x'), true)
  await new Promise(setImmediate)
  assert.deepEqual(events, ['up:headers:{}'])
  stopper!.resume()
  assert.deepEqual(events, ['up:headers:{}', 'up:data:x:end'])
})

test('a filter that goes on with a later chunk took the chunks it stopped: resume() sends none of them', () => {
  let stopper: Parameters<NonNullable<Filter['onRequestData']>>[0] | undefined
  const { chain, events } = harness([{
    name: 'taker',
    onRequestData: (ctx, chunk) => {
      stopper = ctx
      if (chunk.toString() === 'partial') return FilterStatus.StopIteration
      ctx.replaceData(Buffer.from('whole'))
    }
  }])
  chain.requestHeaders({}, false)
  chain.requestData(Buffer.from('partial'), false)
  chain.requestData(Buffer.from('rest'), false)
  stopper!.resume()
  assert.deepEqual(events, ['up:headers:{}', 'up:data:whole'])
})
