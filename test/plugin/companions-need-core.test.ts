import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import websocketTcp from '@switchyard/websocket-tcp'
import h2Connect from '@switchyard/h2-connect'

// What a user meets when a companion is registered without @switchyard/core: Fastify's own dependency
// check (fastify-plugin metadata) refuses it, before the plugin runs. The README's Errors table says so.
for (const [name, plugin] of [['websocket-tcp', websocketTcp], ['h2-connect', h2Connect]] as const) {
  test(`@switchyard/${name} without @switchyard/core fails app.ready() with FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED, as its README says`, async (t) => {
    const app = Fastify()
    t.after(() => app.close())
    app.register(plugin)
    await assert.rejects(async () => { await app.ready() }, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED')
      assert.match(err.message, new RegExp(`The dependency '@switchyard/core' of plugin '@switchyard/${name}' is not registered`))
      return true
    })
    const readme = readFileSync(new URL(`../../packages/${name}/README.md`, import.meta.url), 'utf8')
    const errors = readme.slice(readme.search(/^## Errors$/m))
    assert.match(errors, /^\| `FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED` \|.*`@switchyard\/core` is not registered/m)
  })
}
