import { test } from 'node:test'
import { mib } from './figures.ts'
import { BYTES, nothingLost } from './nothing-lost.ts'

test(`echoes ${mib(BYTES)} byte-exact through H1→H2→H1 with random chunks and a reader that pauses`, { timeout: 600_000 }, async (t) => {
  await nothingLost(t, 'H1→H2→H1', 'nothing-lost H1→H2→H1')
})
