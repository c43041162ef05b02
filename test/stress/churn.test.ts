import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startFixture } from '../helpers/child.ts'
import { assertGaugesZero, handleCounts, watchHandles } from '../helpers/leak-check.ts'
import { startEchoFront } from './echo-front.ts'
import { figures, memoryAfterGc, mib } from './figures.ts'

const CYCLES = Number(process.env.STRESS_CHURN_CYCLES ?? 50_000)
const rows = figures('churn')

// Each cycle is a whole tunnel's life (upgrade, 101, echo, half-close, close). Whatever a cycle leaves
// behind adds up over 50,000: the heap after GC and the live handles must stay level across checkpoints.
test(`${CYCLES} upgrades of churn leave memory and handles level`, { timeout: 300_000 }, async (t) => {
  const { app, port } = await startEchoFront(t)
  const watch = watchHandles()
  await watch.mark()
  const baseline = handleCounts()

  const started = performance.now()
  const clients = await startFixture(t, 'churn-clients.ts', [String(port), String(CYCLES), '64'])
  const heaps: number[] = []
  let checkpoint = clients.ready as unknown as { done: number, failed: number }
  for (;;) {
    assert.equal(checkpoint.failed, 0)
    // The clients have seen every connection close; wait for the proxy's side of each too.
    await watch.settled()
    assertGaugesZero([app])
    assert.deepEqual(handleCounts(), baseline)
    heaps.push(memoryAfterGc().heapUsed)
    if (checkpoint.done >= CYCLES) break
    clients.child.stdin!.write('next\n')
    checkpoint = JSON.parse((await clients.lines.next()).value as string) as typeof checkpoint
  }
  const elapsed = (performance.now() - started) / 1000
  assert.equal(checkpoint.done, CYCLES)
  assert.equal(app.switchyard.stats().downstream_cx_upgrades_total, CYCLES)

  const growth = heaps.at(-1)! - heaps[0]!
  rows.add(t, 'upgrade cycles (upgrade, echo, close), 64 at a time', `${CYCLES}, 0 failed, ${Math.round(CYCLES / elapsed)}/s`)
  rows.add(t, 'front heap after GC at each fifth', heaps.map(mib).join(' → '))
  rows.add(t, 'live handles at each fifth', 'back to the baseline every time')
  // Generous: a leak of even 200 bytes per cycle would add up to 8 MiB over 40,000 cycles.
  assert.ok(growth < 8 * 1024 * 1024, `heap grew by ${mib(growth)} between the first and the last checkpoint`)
})
