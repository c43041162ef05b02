/**
 * "Nothing leaks" checks for the fault and load tests: every TCP socket this process opens or accepts
 * is seen through Node's `net.client.socket` / `net.server.socket` diagnostics channels, so a test can
 * wait for their 'close' events (never a timer) and then compare `process.getActiveResourcesInfo()`
 * with a baseline taken before the traffic.
 */
import diagnostics from 'node:diagnostics_channel'
import type net from 'node:net'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'

/**
 * Counts of live connection handles (TCP sockets, connected or connecting, accepted or opened).
 * Listening servers are left out (Node emits a server's 'close' before libuv releases its handle, so
 * an earlier test's server may still count), and so are child-process pipes (a killed fixture's go
 * with it) and timers.
 */
export function handleCounts (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind !== 'TCPSocketWrap' && kind !== 'TCPWrap') continue
    counts[kind] = (counts[kind] ?? 0) + 1
  }
  return counts
}

export interface HandleWatch {
  /** Sockets opened or accepted since the watch began that have not closed yet, in order. */
  readonly sockets: net.Socket[]
  /**
   * Takes the baseline the later check compares against, once every socket already destroyed (an
   * earlier test's teardown) has released its handle.
   */
  mark (): Promise<void>
  /**
   * Waits until every socket seen since the watch began has closed (except those `keep` selects), then
   * asserts the handle counts equal the baseline plus `extra` (sockets a pool legitimately keeps).
   */
  settled (options?: { keep?: (socket: net.Socket) => boolean, extra?: number }): Promise<void>
}

// Every socket of the process not yet closed, from the first import on, with its sequence number and
// the promise of its release. `socket.closed` turns true before libuv has released the handle; the
// 'close' event comes after it, so that is what is awaited. Closed sockets are dropped (load tests
// open tens of thousands).
const live = new Map<net.Socket, { seq: number, released: Promise<void> }>()
let opened = 0
function onSocket (message: unknown): void {
  const socket = (message as { socket: net.Socket }).socket
  const seq = opened++
  live.set(socket, { seq, released: new Promise((resolve) => socket.once('close', () => { live.delete(socket); resolve() })) })
}
diagnostics.subscribe('net.client.socket', onSocket)
diagnostics.subscribe('net.server.socket', onSocket)

/** Starts watching sockets. Call `mark()` once the servers are listening. */
export function watchHandles (): HandleWatch {
  const first = opened
  const since = (): Array<[net.Socket, { seq: number, released: Promise<void> }]> => [...live].filter(([, v]) => v.seq >= first)
  let baseline: Record<string, number> = handleCounts()
  return {
    get sockets () { return since().map(([s]) => s) },
    async mark () {
      await Promise.all([...live].filter(([s]) => s.destroyed).map(([, v]) => v.released))
      baseline = handleCounts()
    },
    async settled ({ keep, extra = 0 } = {}) {
      await Promise.all(since().filter(([s]) => keep?.(s) !== true).map(([, v]) => v.released))
      const now = handleCounts()
      const expected: Record<string, number> = { ...baseline, TCPSocketWrap: (baseline.TCPSocketWrap ?? 0) + extra }
      now.TCPSocketWrap ??= 0
      assert.deepEqual(now, expected, 'live handles are not back to the baseline')
    }
  }
}

function activeGauges (apps: FastifyInstance[]): Array<[string, number]> {
  return apps.flatMap((app) => Object.entries(app.switchyard.stats()).filter(([name, value]) => name.endsWith('_active') && value !== 0))
}

/**
 * Waits until every `*_active` gauge (core, legacy, per type, per cluster) of every app reads zero,
 * checking again after each `switchyard:tunnel:close` (published once a stream's stats are final). A
 * gauge stuck above zero leaves the wait to the test's timeout.
 */
export async function gaugesAtZero (apps: FastifyInstance[]): Promise<void> {
  while (activeGauges(apps).length > 0) {
    await new Promise<void>((resolve) => {
      const onClose = (): void => { diagnostics.unsubscribe('switchyard:tunnel:close', onClose); setImmediate(resolve) }
      diagnostics.subscribe('switchyard:tunnel:close', onClose)
    })
  }
}

/** Every `*_active` gauge of every app reads zero now. */
export function assertGaugesZero (apps: FastifyInstance[]): void {
  assert.deepEqual(activeGauges(apps), [], 'gauges not back at zero')
}
