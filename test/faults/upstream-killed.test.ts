import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rawClient, wsUpgradeHead, type RawClient } from '../helpers/raw-client.ts'
import { startFixture } from '../helpers/child.ts'
import { modes, startMode } from '../helpers/tunnel-modes.ts'
import { gaugesAtZero, watchHandles } from '../helpers/leak-check.ts'

const TUNNELS = 5

// The upstream process dies (SIGKILL) while every tunnel is streaming: the kernel closes its sockets, the
// proxy sees FIN or RST on the upstream leg and must end each downstream, not wait on it forever.
for (const mode of modes) {
  test(`an upstream process killed mid-stream ends every tunnel through it and frees everything (${mode})`, { timeout: 20_000 }, async (t) => {
    const watch = watchHandles()
    const upstream = await startFixture(t, 'upgrade-echo-server.ts')
    const { port, apps, h2Port } = await startMode(t, mode, upstream.ready.port)
    await watch.mark()

    const clients: RawClient[] = []
    for (let i = 0; i < TUNNELS; i++) {
      const client = await rawClient(t, port, wsUpgradeHead(`/killed/${i}`))
      assert.equal((await client.head()).status, 101)
      clients.push(client)
    }
    // Mid-stream: each client keeps writing, and has had bytes echoed back through the tunnel.
    const chunk = Buffer.alloc(16 * 1024, 0x6b)
    for (const client of clients) {
      const pump = (): void => { while (!client.socket.destroyed && !client.ended && client.socket.write(chunk)); }
      client.socket.on('drain', pump)
      pump()
    }
    await Promise.all(clients.map((c) => c.until((d) => d.length > 64 * 1024)))

    await upstream.kill()
    await Promise.all(clients.map((c) => c.done))
    // The clients are half-open sockets: they end their side once the proxy has ended its own.
    for (const c of clients) c.socket.end()

    await watch.settled(h2Port === undefined ? {} : { keep: (s) => s.remotePort === h2Port || s.localPort === h2Port, extra: 2 })
    await gaugesAtZero(apps)
    for (const app of apps) assert.ok((app.switchyard.stats().downstream_cx_upgrades_total ?? app.switchyard.stats().downstream_cx_websocket_total ?? 0) >= TUNNELS)
  })
}
