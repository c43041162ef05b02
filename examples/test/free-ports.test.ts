import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { withFreePorts } from '../mesh/free-ports.ts'
import { testConfig } from './helpers/mesh-clients.ts'

test('a default port that is taken is replaced by any free one, and the caller is told', async (t) => {
  const holder = createServer().listen(0, '127.0.0.1')
  await once(holder, 'listening')
  t.after(() => holder.close())
  const busy = (holder.address() as AddressInfo).port

  const free = createServer().listen(0, '127.0.0.1')
  await once(free, 'listening')
  const freePort = (free.address() as AddressInfo).port
  await new Promise<void>((resolve) => free.close(() => resolve()))

  const told: Array<[string, number]> = []
  const config = testConfig({ front: { port: busy }, sidecar: { port: freePort }, app: { port: 0 } })
  const next = await withFreePorts(config, (node, port) => told.push([node, port]))
  assert.deepEqual(told, [['front', busy]])
  assert.equal(next.front.port, 0)
  assert.equal(next.sidecar.port, freePort)
  assert.equal(config.front.port, busy, 'the given config is left as it was')
})
