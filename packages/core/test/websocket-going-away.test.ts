import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FrameBoundary, closeFrame, GOING_AWAY } from '../src/websocket-going-away.ts'

function frame (opcode: number, payloadLength: number, masked: boolean): Buffer {
  const len = payloadLength < 126 ? [payloadLength] : payloadLength < 65536 ? [126, payloadLength >> 8, payloadLength & 0xff] : [127, 0, 0, 0, 0, (payloadLength >>> 24) & 0xff, (payloadLength >> 16) & 0xff, (payloadLength >> 8) & 0xff, payloadLength & 0xff]
  const head = Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | len[0]!, ...len.slice(1)])
  return Buffer.concat([head, masked ? Buffer.from([9, 9, 9, 9]) : Buffer.alloc(0), Buffer.alloc(payloadLength, 0x61)])
}

test('tracks frame boundaries across reads split anywhere, for 7-, 16- and 64-bit lengths, masked or not', () => {
  const stream = Buffer.concat([frame(1, 5, true), frame(2, 300, false), frame(2, 70_000, true), frame(9, 0, false)])
  const ends = new Set<number>()
  let at = 0
  for (const f of [frame(1, 5, true), frame(2, 300, false), frame(2, 70_000, true), frame(9, 0, false)]) ends.add(at += f.length)
  for (const step of [1, 3, 7, 1000]) {
    const b = new FrameBoundary()
    for (let i = 0; i < stream.length; i += step) {
      const chunk = stream.subarray(i, Math.min(i + step, stream.length))
      b.note(chunk)
      const end = i + chunk.length
      if (ends.has(end)) assert.ok(b.atBoundary, `at ${end} (step ${step})`)
      else if (!ends.has(end)) assert.equal(b.atBoundary, false, `inside a frame at ${end} (step ${step})`)
    }
  }
})

test('advance stops at the end of the frame in progress and says how much it read', () => {
  const b = new FrameBoundary()
  const two = Buffer.concat([frame(1, 4, false), frame(1, 4, false)])
  b.note(two.subarray(0, 3))
  assert.equal(b.atBoundary, false)
  assert.equal(b.advance(two.subarray(3), two.length - 3, true), 3)
  assert.ok(b.atBoundary)
})

test('notices a close frame and builds close frames with a code, masked for the client side', () => {
  const b = new FrameBoundary()
  b.note(frame(1, 2, true))
  assert.equal(b.sawClose, false)
  b.note(closeFrame(GOING_AWAY, true))
  assert.ok(b.sawClose && b.atBoundary)
  assert.deepEqual([...closeFrame(GOING_AWAY, false)], [0x88, 2, 0x03, 0xe9])
  const masked = closeFrame(GOING_AWAY, true)
  assert.equal(masked.length, 8)
  assert.equal(masked[1], 0x82)
  assert.equal(((masked[6]! ^ masked[2]!) << 8) | (masked[7]! ^ masked[3]!), GOING_AWAY)
})
