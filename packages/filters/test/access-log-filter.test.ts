import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createAccessLogFilter, websocketMessagesKey, type AccessLogLine } from '../src/index.ts'
import { fakeContext } from './fake-context.ts'

function capture () {
  const lines: Array<{ obj: AccessLogLine, msg?: string }> = []
  return { lines, logger: { info: (obj: object, msg?: string) => { lines.push({ obj: obj as AccessLogLine, msg }) } } }
}

test('writes one line for a tunnel closed by the client: status, bytes each way, who and why', () => {
  const { lines, logger } = capture()
  const filter = createAccessLogFilter({ logger })
  const { ctx } = fakeContext({ method: 'GET', url: '/chat?room=1' })
  assert.equal(filter.onRequestHeaders!(ctx, {}, false), undefined)
  assert.equal(filter.onRequestData!(ctx, Buffer.alloc(10), false), undefined)
  assert.equal(filter.onResponseHeaders!(ctx, 101, {}, false), undefined)
  assert.equal(filter.onResponseData!(ctx, Buffer.alloc(25), false), undefined)
  filter.onRequestData!(ctx, Buffer.alloc(0), true)
  filter.onResponseData!(ctx, Buffer.alloc(0), true)
  ctx.state[websocketMessagesKey] = { fromDownstream: 2, fromUpstream: 3 }
  filter.onClose!(ctx)
  assert.equal(lines.length, 1)
  const { obj, msg } = lines[0]!
  assert.equal(msg, 'access')
  assert.ok(obj.durationMs >= 0)
  assert.deepEqual({ ...obj, durationMs: 0 }, {
    method: 'GET',
    path: '/chat?room=1',
    upgradeType: 'websocket',
    status: 101,
    bytesFromDownstream: 10,
    bytesFromUpstream: 25,
    durationMs: 0,
    closedBy: 'downstream',
    reason: 'end',
    websocketMessages: { fromDownstream: 2, fromUpstream: 3 }
  })
})

test('a plain request finished by its response is logged as complete, to the request logger by default', () => {
  const filter = createAccessLogFilter()
  const { ctx, rec } = fakeContext({ upgradeType: null, method: 'POST', url: '/api' })
  filter.onRequestHeaders!(ctx, {}, false)
  filter.onRequestData!(ctx, Buffer.alloc(4), true)
  filter.onResponseHeaders!(ctx, 200, {}, false)
  filter.onResponseData!(ctx, Buffer.alloc(2), false)
  filter.onResponseData!(ctx, Buffer.alloc(0), true)
  filter.onClose!(ctx)
  const line = rec.logs.find((l) => l.level === 'info')!.obj as AccessLogLine
  assert.equal(line.closedBy, 'upstream')
  assert.equal(line.reason, 'complete')
  assert.equal(line.bytesFromDownstream, 4)
  assert.equal(line.status, 200)
  assert.equal(line.upgradeType, null)
})

test('a local reply and an error say the proxy or a peer ended the stream', () => {
  const { lines, logger } = capture()
  const filter = createAccessLogFilter({ logger })
  const local = fakeContext()
  filter.onRequestHeaders!(local.ctx, {}, false)
  filter.onResponseHeaders!(local.ctx, 401, {}, true)
  filter.onClose!(local.ctx)
  const reset = fakeContext()
  filter.onRequestHeaders!(reset.ctx, {}, false)
  filter.onResponseHeaders!(reset.ctx, 101, {}, false)
  filter.onClose!(reset.ctx, Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
  assert.deepEqual(lines.map((l) => [l.obj.status, l.obj.closedBy, l.obj.reason]), [[401, 'proxy', 'local_reply'], [101, 'peer', 'ECONNRESET']])
})

test('the close reason from core names an idle timeout and an upstream that went away', () => {
  const { lines, logger } = capture()
  const filter = createAccessLogFilter({ logger })
  for (const reason of ['idle_timeout', 'upstream'] as const) {
    const { ctx } = fakeContext({ method: 'GET', url: '/chat' })
    filter.onRequestHeaders!(ctx, {}, false)
    filter.onResponseHeaders!(ctx, 101, {}, false)
    filter.onClose!(ctx, undefined, reason)
  }
  assert.deepEqual(lines.map(l => [l.obj.closedBy, l.obj.reason]), [['proxy', 'idle_timeout'], ['upstream', 'closed']])
})
