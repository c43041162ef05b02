import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Page } from 'playwright-core'
import { meshFor, testConfig } from './helpers/mesh-clients.ts'
// The repository's one peer finder (Debian's Chromium, or CHROMIUM): absent, the test is skipped with the install line.
import { havePeers, peerPath } from '../../test/helpers/peers.ts'

const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))

/** Chromium, headless, with a fresh profile; `t.after` closes it. */
async function openBrowser (t: TestContext): Promise<Page> {
  const profile = mkdtempSync(join(tmpdir(), 'swy-mesh-chromium-'))
  // Without the background-networking flags Chromium's own connections get refused on our machines.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: peerPath('chromium'),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync']
  })
  t.after(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  return await context.newPage()
}

/** The page's DOM, typed as far as these checks need: the examples compile without the DOM lib. */
type PageGlobal = { document: { querySelector (selector: string): { textContent: string | null } | null } }

/** Waits until the live view's cell for `key` shows `value`. */
async function cellIs (page: Page, key: string, value: number): Promise<void> {
  await page.waitForFunction(([key, value]) =>
    (globalThis as unknown as PageGlobal).document.querySelector(`[data-key="${key}"]`)?.textContent === String(value), [key, value] as const)
}

/** Waits until the live view's cell for `key` shows more than `value`. */
async function cellAbove (page: Page, key: string, value: number): Promise<void> {
  await page.waitForFunction(([key, value]) =>
    Number((globalThis as unknown as PageGlobal).document.querySelector(`[data-key="${key}"]`)?.textContent) > value, [key, value] as const)
}

async function chat (page: Page, text: string, via: 'h2' | 'legacy'): Promise<void> {
  await page.fill('#text', text)
  await page.click(`button[data-via="${via}"]`)
  // The room sends every message to both of the page's connections.
  await page.waitForSelector(`li:has(.text:text-is("${text}")):has([data-arrived="h2"]):has([data-arrived="legacy"])`)
}

for (const workers of [1, 2]) {
  test(`the page chats through the mesh and its live view follows the counters (${workers} front process${workers > 1 ? 'es' : ''})`, async (t) => {
    if (!havePeers(t, 'chromium')) return
    const { mesh } = await meshFor(t, testConfig({ front: { port: 0, shutdownGracePeriod: 0, workers } }))
    const page = await openBrowser(t)
    await page.goto(mesh.url + '/')
    await page.waitForSelector('[data-conn="h2"].open')
    await page.waitForSelector('[data-conn="legacy"].open')
    await cellIs(page, 'fronts', workers)

    await chat(page, 'hello over h2', 'h2')
    await chat(page, 'hello the old way', 'legacy')
    assert.match(await page.textContent('li:has(.text:text-is("hello over h2"))') ?? '', /sent over h2/)

    await cellIs(page, 'upgrades.websocket', 1)
    await cellIs(page, 'upgrades.legacy', 1)
    await cellIs(page, 'active.h2', 1)
    await cellIs(page, 'active.sidecar', 1)
    await cellIs(page, 'active.legacy', 1)
    // The h2 message went up both hops; both messages came back down them.
    await cellAbove(page, 'bytes.h1.up', 0)
    await cellAbove(page, 'bytes.h2.up', 0)
    await cellAbove(page, 'bytes.h2.down', 0)

    // A WebSocket on /shout is refused (the route enables only `shout`): 403, counted.
    await page.click('#refused')
    await cellIs(page, 'refused.403', 1)

    mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: join(artifacts, `mesh-page-${workers}-front${workers > 1 ? 's' : ''}.png`), fullPage: true })
  })
}

test('the page shows the drain: its connections keep working through the grace period, then the mesh closes', async (t) => {
  if (!havePeers(t, 'chromium')) return
  const { mesh } = await meshFor(t, testConfig({ front: { port: 0, shutdownGracePeriod: 60_000 } }))
  const page = await openBrowser(t)
  await page.goto(mesh.url + '/')
  await page.waitForSelector('[data-conn="h2"].open')
  await page.waitForSelector('[data-conn="legacy"].open')
  await cellIs(page, 'active.h2', 1)

  const closing = mesh.close()
  await page.waitForSelector('#draining', { state: 'visible' })
  await chat(page, 'still here while draining', 'h2')
  await cellAbove(page, 'bytes.h2.down', 0)
  mkdirSync(artifacts, { recursive: true })
  await page.screenshot({ path: join(artifacts, 'mesh-page-draining.png'), fullPage: true })

  // The page's own two tunnels are what the drain waits for: it ends when they close.
  await page.click('#leave')
  await closing
  await page.waitForSelector('[data-conn="h2"].closed')
  await page.waitForSelector('[data-conn="legacy"].closed')
})
