import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { once } from 'node:events'
import { setImmediate as turn } from 'node:timers/promises'
import { proxy, type Filter, type FilterContext } from '@switchyard/core'
import { startProxy, cluster } from '../helpers/start-proxy.ts'
import { listen } from '../helpers/net.ts'

const CHUNK = Buffer.alloc(64 * 1024, 'z')
const TOTAL = 16 * 1024 * 1024

/** Lets pending I/O run for a while (event-loop turns, not a timer): data that flows would arrive. */
async function letIoRun (): Promise<void> {
  for (let i = 0; i < 200; i++) await turn()
}

/** A filter that holds the stream from the given headers callback and counts the data it is given. */
function holder (at: 'onRequestHeaders' | 'onResponseHeaders', counted: 'onRequestData' | 'onResponseData'): { filter: Filter, held: Promise<FilterContext>, dataCalls: () => number } {
  let calls = 0
  let seen!: (ctx: FilterContext) => void
  const held = new Promise<FilterContext>((resolve) => { seen = resolve })
  const filter: Filter = {
    name: 'hold',
    [at]: (ctx: FilterContext) => { ctx.pause(); seen(ctx) },
    [counted]: () => { calls++ }
  }
  return { filter, held, dataCalls: () => calls }
}

test('a filter that pauses a plain response stops the proxy reading the upstream until it resumes', async (t) => {
  let blocked!: () => void
  const upstreamBlocked = new Promise<void>((resolve) => { blocked = resolve })
  const upstream = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(TOTAL) })
    let sent = 0
    const write = (): void => {
      while (sent < TOTAL) {
        sent += CHUNK.length
        if (!res.write(CHUNK)) { blocked(); res.once('drain', write); return }
      }
      res.end()
    }
    write()
  })
  const port = await listen(t, upstream)
  const hold = holder('onResponseHeaders', 'onResponseData')
  const front = await startProxy(t, { clusters: { app: cluster(port) }, filters: [hold.filter] }, (app) => {
    app.get('/big', { upstream: { cluster: 'app' } }, proxy)
  })
  // Node holds a response head until its first body byte: the answer arrives only after the resume.
  const answer = fetch(`${front.url}/big`)
  const ctx = await hold.held
  await upstreamBlocked
  await letIoRun()
  assert.equal(hold.dataCalls(), 0, 'no body chunk was read while the filter held the stream')
  ctx.resume()
  const res = await answer
  assert.equal(res.status, 200)
  assert.equal(Buffer.from(await res.arrayBuffer()).length, TOTAL)
  assert.ok(hold.dataCalls() > 0)
})

test('a filter that pauses a plain request body stops the proxy reading the client until it resumes', async (t) => {
  const upstream = http.createServer((req, res) => {
    let n = 0
    req.on('data', (c: Buffer) => { n += c.length })
    req.on('end', () => res.end(String(n)))
  })
  const port = await listen(t, upstream)
  const hold = holder('onRequestHeaders', 'onRequestData')
  const front = await startProxy(t, { clusters: { app: cluster(port) }, filters: [hold.filter] }, (app) => {
    // A GET's body is left unread by Fastify and streamed through the chain by the proxy.
    app.get('/upload', { upstream: { cluster: 'app' }, bodyLimit: TOTAL }, proxy)
  })
  const req = http.request(`${front.url}/upload`, { method: 'GET', headers: { 'content-length': String(TOTAL) }, agent: false })
  req.on('error', () => {})
  const response = once(req, 'response')
  let sent = 0
  const more = (): boolean => {
    while (sent < TOTAL) {
      sent += CHUNK.length
      if (!req.write(CHUNK)) return false
    }
    req.end()
    return true
  }
  // The client writes as fast as the path takes it, all along: only the proxy's hold can stop it.
  req.on('drain', more)
  more()
  const ctx = await hold.held
  await letIoRun()
  assert.equal(hold.dataCalls(), 0, 'no body chunk was read while the filter held the stream')
  assert.ok(sent < TOTAL, 'the client is blocked while the proxy holds the stream')
  ctx.resume()
  const [res] = await response as [http.IncomingMessage]
  assert.equal(res.statusCode, 200)
  res.setEncoding('utf8')
  let text = ''
  res.on('data', (s: string) => { text += s })
  await once(res, 'end')
  assert.ok(hold.dataCalls() > 0)
  assert.equal(text, String(TOTAL), 'the whole GET body reached the upstream')
})
