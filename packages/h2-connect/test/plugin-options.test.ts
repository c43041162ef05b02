import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import switchyard from '@switchyard/core'
import h2Connect from '../src/index.ts'
import { defaultSessionMemory, STREAM_BUDGET } from '../src/plugin-options.ts'

async function readyWith (options: unknown): Promise<Error & { code?: string }> {
  const app = Fastify({ http2: true })
  app.register(switchyard, {})
  app.register(h2Connect, options as never)
  try {
    await app.ready()
  } catch (err) {
    return err as Error & { code?: string }
  } finally {
    await app.close()
  }
  throw new Error('app.ready() accepted the options')
}

const bad: Array<[string, unknown, string]> = [
  ['an unknown option', { maxStreams: 10 }, 'maxStreams'],
  ['a preserveMethod that is not a boolean', { preserveMethod: 'yes' }, 'preserveMethod'],
  ['a maxConcurrentStreams of 0', { maxConcurrentStreams: 0 }, 'maxConcurrentStreams'],
  ['a maxConcurrentStreams that is not an integer', { maxConcurrentStreams: 1.5 }, 'maxConcurrentStreams'],
  ['a maxConcurrentStreams beyond 2^31-1', { maxConcurrentStreams: 2 ** 31 }, 'maxConcurrentStreams'],
  ['a maxSessionMemory of 0', { maxSessionMemory: 0 }, 'maxSessionMemory'],
  ['a maxSessionMemory that is a string', { maxSessionMemory: '10' }, 'maxSessionMemory']
]

for (const [what, options, field] of bad) {
  test(`fails app.ready() with SWY_ERR_H2_OPTIONS naming the field for ${what}`, async () => {
    const err = await readyWith(options)
    assert.equal(err.code, 'SWY_ERR_H2_OPTIONS')
    assert.match(err.message, new RegExp(`option ${field}:`))
  })
}

test('accepts every option at its bounds', async (t) => {
  const app = Fastify({ http2: true })
  t.after(() => app.close())
  await app.register(switchyard, {})
  await app.register(h2Connect, { preserveMethod: true, maxConcurrentStreams: 2 ** 31 - 1, maxSessionMemory: 0.5 })
  await app.ready()
})

test('sizes the default session memory from the stream limit, never below Node\'s 10 MB', () => {
  assert.equal(defaultSessionMemory(1), 10)
  assert.equal(defaultSessionMemory(100), 10)
  assert.equal(defaultSessionMemory(1000), Math.ceil(1000 * STREAM_BUDGET / 1e6))
  assert.ok(defaultSessionMemory(1000) * 1e6 >= 1000 * STREAM_BUDGET)
})
