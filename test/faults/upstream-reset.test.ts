import { test } from 'node:test'
import assert from 'node:assert/strict'
import type net from 'node:net'
import { rawClient, wsUpgradeHead } from '../helpers/raw-client.ts'
import { createUpgradeEchoServer } from '../helpers/upgrade-echo.ts'
import { modes, startMode } from '../helpers/tunnel-modes.ts'
import { gaugesAtZero, watchHandles } from '../helpers/leak-check.ts'
import { listen } from '../helpers/net.ts'

// An upstream that sends RST (SO_LINGER 0) in the middle of a tunnel: Envoy resets the downstream too
// ("upstream reset" ends the stream); here the client's connection closes and nothing stays behind.
for (const mode of modes) {
  test(`an upstream reset mid-tunnel closes the client's connection and frees everything (${mode})`, { timeout: 10_000 }, async (t) => {
    const watch = watchHandles()
    const tunnels: net.Socket[] = []
    const waiting: Array<(s: net.Socket) => void> = []
    const upstreamPort = await listen(t, createUpgradeEchoServer((s) => { tunnels.push(s); waiting.shift()?.(s) }))
    const { port, apps, h2Port } = await startMode(t, mode, upstreamPort)
    await watch.mark()

    const upstreamSide = new Promise<net.Socket>((resolve) => waiting.push(resolve))
    const client = await rawClient(t, port, wsUpgradeHead('/reset'))
    const head = await client.head()
    assert.equal(head.status, 101)
    client.socket.write('before the reset')
    await client.until((d) => d.includes('before the reset'))

    ;(await upstreamSide).resetAndDestroy()
    await client.done
    client.socket.end()
    assert.equal(client.received.includes('after'), false)

    await watch.settled(h2Port === undefined ? {} : { keep: (s) => s.remotePort === h2Port || s.localPort === h2Port, extra: 2 })
    await gaugesAtZero(apps)
    assert.equal(tunnels.length, 1)
  })
}
