import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CloseCode, FrameReader } from '../src/websocket-frame-reader.ts'
import { frame } from './frames.ts'
import { prng, randomChunks } from './fake-context.ts'

const big = Buffer.alloc(70_000, 0x61)
const mid = Buffer.alloc(300, 0x62)

/** A valid client stream: 16- and 64-bit lengths, fragmentation with control frames between fragments. */
const valid = Buffer.concat([
  frame({ opcode: 1, payload: 'hello' }),
  frame({ opcode: 2, payload: mid }),
  frame({ opcode: 2, payload: big }),
  frame({ opcode: 1, payload: 'frag-1', fin: false }),
  frame({ opcode: 9, payload: 'ping' }),
  frame({ opcode: 0, payload: 'frag-2', fin: false }),
  frame({ opcode: 10, payload: '' }),
  frame({ opcode: 0, payload: 'frag-3' }),
  frame({ opcode: 1, payload: 'small in a 64-bit length', lengthBits: 64 }),
  frame({ opcode: 2, payload: '', lengthBits: 16 }),
  frame({ opcode: 8, payload: Buffer.from([0x03, 0xe8]) })
])

function readAll (reader: FrameReader, chunks: Buffer[]): { code: number, consumedBeforeFault: number } {
  let offset = 0
  for (const chunk of chunks) {
    const code = reader.read(chunk)
    if (code !== 0) {
      return { code, consumedBeforeFault: reader.errorFrameStart < 0 ? -1 : offset + reader.errorFrameStart }
    }
    offset += chunk.length
  }
  return { code: 0, consumedBeforeFault: offset }
}

test('reads the same messages from a valid stream whatever its chunking', () => {
  const random = prng(0x5eed)
  for (let round = 0; round < 300; round++) {
    let messages = 0
    const reader = new FrameReader({ fromClient: true, onMessageEnd: () => { messages++ } })
    const chunks = round === 0 ? [valid] : round === 1 ? [...valid].map((b) => Buffer.from([b])) : randomChunks(valid, random, round % 2 === 0 ? 16 : 4096)
    const { code } = readAll(reader, chunks)
    assert.equal(code, 0, `round ${round}`)
    assert.equal(messages, 6, `round ${round}`)
    assert.equal(reader.atBoundary, true)
  }
})

test('reads server frames unmasked and refuses masked ones', () => {
  const reader = new FrameReader({ fromClient: false })
  assert.equal(reader.read(frame({ opcode: 1, payload: 'hi', mask: false })), 0)
  assert.equal(reader.read(frame({ opcode: 1, payload: 'hi', mask: true })), CloseCode.ProtocolError)
})

const prefix = Buffer.concat([frame({ opcode: 1, payload: 'ok' }), frame({ opcode: 2, payload: mid })])

const faults: Array<{ name: string, bad: Buffer, code: number, opts?: { maxMessageBytes?: number, deflate?: boolean } }> = [
  { name: 'an unmasked client frame', bad: frame({ opcode: 1, payload: 'x', mask: false }), code: 1002 },
  { name: 'RSV2 set', bad: frame({ opcode: 1, payload: 'x', rsv2: true }), code: 1002 },
  { name: 'RSV1 without permessage-deflate', bad: frame({ opcode: 1, payload: 'x', rsv1: true }), code: 1002 },
  { name: 'RSV1 on a continuation frame', bad: Buffer.concat([frame({ opcode: 1, payload: 'a', fin: false, rsv1: true }), frame({ opcode: 0, payload: 'b', rsv1: true })]), code: 1002, opts: { deflate: true } },
  { name: 'a reserved data opcode', bad: frame({ opcode: 3, payload: 'x' }), code: 1002 },
  { name: 'a reserved control opcode', bad: frame({ opcode: 11, payload: 'x' }), code: 1002 },
  { name: 'a fragmented control frame', bad: frame({ opcode: 9, payload: 'x', fin: false }), code: 1002 },
  { name: 'a control frame over 125 bytes', bad: frame({ opcode: 9, payload: Buffer.alloc(126) }), code: 1002 },
  { name: 'a close frame with a 1-byte body', bad: frame({ opcode: 8, payload: Buffer.from([3]) }), code: 1002 },
  { name: 'a continuation with no message open', bad: frame({ opcode: 0, payload: 'x' }), code: 1002 },
  { name: 'a new message inside a fragmented one', bad: Buffer.concat([frame({ opcode: 1, payload: 'a', fin: false }), frame({ opcode: 1, payload: 'b' })]), code: 1002 },
  { name: 'a 64-bit length with its top bit set', bad: frame({ opcode: 2, payload: 'x', lengthBits: 64, highWord: 0x80000000 }), code: 1002 },
  { name: 'a 64-bit length beyond 2^53', bad: frame({ opcode: 2, payload: 'x', lengthBits: 64, highWord: 0x00400000 }), code: 1009 },
  { name: 'a message over the limit in one frame', bad: frame({ opcode: 2, payload: Buffer.alloc(1025) }), code: 1009, opts: { maxMessageBytes: 1024 } },
  { name: 'a message over the limit across fragments', bad: Buffer.concat([frame({ opcode: 2, payload: Buffer.alloc(600), fin: false }), frame({ opcode: 9 }), frame({ opcode: 0, payload: Buffer.alloc(600) })]), code: 1009, opts: { maxMessageBytes: 1024 } }
]

for (const fault of faults) {
  test(`fails with ${fault.code} on ${fault.name} at the same frame whatever the chunking`, () => {
    const stream = Buffer.concat([prefix, fault.bad, frame({ opcode: 1, payload: 'never read' })])
    const random = prng(fault.name.length * 7919)
    const seen = new Set<string>()
    for (let round = 0; round < 100; round++) {
      const reader = new FrameReader({ fromClient: true, maxMessageBytes: fault.opts?.maxMessageBytes ?? 4096 })
      reader.deflate = fault.opts?.deflate === true
      const chunks = round === 0 ? [stream] : randomChunks(stream, random, round % 3 === 0 ? 3 : 700)
      const { code, consumedBeforeFault } = readAll(reader, chunks)
      assert.equal(code, fault.code, `round ${round}`)
      // The frame at fault starts inside the chunk, or (-1) its header began in an earlier one.
      if (consumedBeforeFault >= 0) seen.add('in-chunk')
      else seen.add('split')
      assert.ok(consumedBeforeFault === -1 || consumedBeforeFault >= prefix.length, `round ${round}: nothing before the fault is blamed`)
      assert.equal(reader.read(Buffer.from([0x81])), fault.code, 'a failed reader stays failed')
    }
    assert.ok(seen.has('in-chunk'))
  })
}

test('a message start may be refused by the caller, e.g. a rate limit', () => {
  let started = 0
  const reader = new FrameReader({ fromClient: true, onMessageStart: () => (++started > 2 ? CloseCode.PolicyViolation : 0) })
  const stream = Buffer.concat([frame({ opcode: 1, payload: 'a' }), frame({ opcode: 1, payload: 'b', fin: false }), frame({ opcode: 0, payload: 'c' }), frame({ opcode: 1, payload: 'd' })])
  assert.equal(reader.read(stream), CloseCode.PolicyViolation)
  assert.equal(started, 3, 'continuations are not new messages')
})

test('hands out the unmasking view of compressed payload bytes only', () => {
  const got: Buffer[] = []
  const reader = new FrameReader({
    fromClient: true,
    onCompressedPayload: (chunk, start, end, mask, index) => {
      const out = Buffer.alloc(end - start)
      for (let i = 0; i < out.length; i++) out[i] = chunk[start + i]! ^ mask![(index + i) & 3]!
      got.push(out)
    }
  })
  reader.deflate = true
  const stream = Buffer.concat([frame({ opcode: 1, payload: 'plain' }), frame({ opcode: 1, payload: 'squeezed-bytes', rsv1: true })])
  for (const chunk of randomChunks(stream, prng(3), 5)) assert.equal(reader.read(chunk), 0)
  assert.equal(Buffer.concat(got).toString(), 'squeezed-bytes')
})
