import { test } from 'node:test'
import { mib } from './figures.ts'
import { BYTES, nothingLost } from './nothing-lost.ts'

test(`echoes ${mib(BYTES)} byte-exact through new style with random chunks and a reader that pauses`, { timeout: 600_000 }, async (t) => {
  await nothingLost(t, 'new style', 'nothing-lost new style')
})
