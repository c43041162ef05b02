import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bodyFraming, MAX_RESPONSE_HEAD, parseResponseHead } from '../src/http1/response-head.ts'
import { ChunkedScanner } from '../src/http1/chunked.ts'

test('parses a complete response head and says where its payload starts', () => {
  const buf = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nPAYLOAD')
  const head = parseResponseHead(buf)!
  assert.equal(head.statusCode, 101)
  assert.deepEqual(head.rawHeaders, ['Upgrade', 'websocket', 'Connection', 'Upgrade'])
  assert.equal(buf.toString('latin1', head.length), 'PAYLOAD')
})

test('waits for more bytes while the head is incomplete, and refuses one that is too long or not HTTP', () => {
  assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 101 Switching')), null)
  assert.throws(() => parseResponseHead(Buffer.alloc(MAX_RESPONSE_HEAD + 1, 'a')), /over/)
  assert.throws(() => parseResponseHead(Buffer.from('SSH-2.0-x\r\n\r\n')), /not HTTP/)
  assert.throws(() => parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nno colon\r\n\r\n')), /malformed/)
})

test('refuses a complete head over the limit that arrives in one buffer', () => {
  const big = Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nx-big: ${'b'.repeat(MAX_RESPONSE_HEAD)}\r\n\r\n`)
  assert.throws(() => parseResponseHead(big), /over/)
})

test('tells how a relayed body ends', () => {
  const head = (s: string) => parseResponseHead(Buffer.from(s))!
  assert.deepEqual(bodyFraming(head('HTTP/1.1 426 X\r\nContent-Length: 7\r\n\r\n'), 'GET'), { kind: 'length', length: 7 })
  assert.deepEqual(bodyFraming(head('HTTP/1.1 400 X\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 7\r\n\r\n'), 'GET'), { kind: 'chunked' })
  assert.deepEqual(bodyFraming(head('HTTP/1.1 400 X\r\nTransfer-Encoding: gzip\r\n\r\n'), 'GET'), { kind: 'close' })
  assert.deepEqual(bodyFraming(head('HTTP/1.1 403 X\r\n\r\n'), 'GET'), { kind: 'close' })
  assert.deepEqual(bodyFraming(head('HTTP/1.1 204 X\r\nContent-Length: 7\r\n\r\n'), 'GET'), { kind: 'none' })
  assert.deepEqual(bodyFraming(head('HTTP/1.1 200 X\r\nContent-Length: 7\r\n\r\n'), 'HEAD'), { kind: 'none' })
})

test('finds the end of a chunked body split anywhere, trailers included', () => {
  const body = Buffer.from('5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT')
  for (let cut = 0; cut <= body.length; cut++) {
    const scanner = new ChunkedScanner()
    const first = scanner.push(body.subarray(0, cut))
    const end = first !== -1 ? first : cut + scanner.push(body.subarray(cut))
    assert.equal(body.toString('latin1', 0, end).endsWith('Trailer: x\r\n\r\n'), true, `cut at ${cut}`)
    assert.equal(end, body.length - 4)
  }
  assert.throws(() => new ChunkedScanner().push(Buffer.from('zz\r\n')), /malformed chunk size/)
})

test('refuses chunked framing whose lines end with a bare LF (RFC 9112 §7.1 requires CRLF)', () => {
  assert.throws(() => new ChunkedScanner().push(Buffer.from('5\nhello\r\n0\r\n\r\n')), /bare LF/)
  assert.throws(() => new ChunkedScanner().push(Buffer.from('5\r\nhello\n0\r\n\r\n')), /not followed by CRLF/)
  assert.throws(() => new ChunkedScanner().push(Buffer.from('5\r\nhelloXY0\r\n\r\n')), /not followed by CRLF/)
  assert.throws(() => new ChunkedScanner().push(Buffer.from('0\r\nTrailer: x\n\r\n')), /bare LF/)
  assert.throws(() => new ChunkedScanner().push(Buffer.from('0\r\n\n')), /bare LF/)
  assert.equal(new ChunkedScanner().push(Buffer.from('0\r\n\r\n')), 5)
})

test('decodes a chunked body split anywhere into its payload, and says where it ends', () => {
  const body = Buffer.from('5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT')
  for (let cut = 0; cut <= body.length; cut++) {
    const scanner = new ChunkedScanner()
    const payload: Buffer[] = []
    const onData = (b: Buffer): void => { payload.push(Buffer.from(b)) }
    const first = scanner.push(body.subarray(0, cut), onData)
    const end = first !== -1 ? first : cut + scanner.push(body.subarray(cut), onData)
    assert.equal(Buffer.concat(payload).toString(), 'hello world', `cut at ${cut}`)
    assert.equal(end, body.length - 4)
  }
})
