/**
 * WebSocket upstreams for the legacy `useWebsocket` tests: a `ws` echo server that also answers plain
 * requests, and an all-drafts echo server (websocket-driver with `allowDrafts`) that speaks hixie-76.
 */
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { TestContext } from 'node:test'
import { WebSocketServer } from 'ws'
import websocketDriver from 'websocket-driver'
import { listen } from './net.ts'

export interface WsUpstream {
  port: number
  /** Request heads the upstream saw, upgrades and plain requests alike. */
  requests: http.IncomingMessage[]
  wss: WebSocketServer
}

/** `ws` echo server (`echo:<message>`), permessage-deflate offered; plain requests get `plain <url>`. */
export async function wsEchoUpstream (t: TestContext, name = 'ws'): Promise<WsUpstream> {
  const requests: http.IncomingMessage[] = []
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: true })
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo:${String(data)}`))
  })
  const server = http.createServer((req, res) => {
    requests.push(req)
    res.setHeader('x-upstream', name)
    res.end(`plain ${req.url}`)
  })
  server.on('upgrade', (req, socket, head) => {
    requests.push(req)
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  })
  t.after(() => { for (const c of wss.clients) c.terminate(); wss.close() })
  return { port: await listen(t, server), requests, wss }
}

export interface DraftsUpstream {
  port: number
  /** The protocol version of each connection, as websocket-driver names it (`hixie-76`, `hybi-13`, …). */
  versions: string[]
}

/** An all-drafts WebSocket echo server (websocket-driver, `allowDrafts: true`). */
export async function allDraftsUpstream (t: TestContext): Promise<DraftsUpstream> {
  const versions: string[] = []
  const server = http.createServer((_req, res) => { res.statusCode = 400; res.end() })
  server.on('upgrade', (req, socket, body: Buffer) => {
    const driver = websocketDriver.http(req, { allowDrafts: true })
    versions.push(driver.version)
    socket.on('error', () => {})
    driver.io.write(body)
    socket.pipe(driver.io).pipe(socket)
    driver.messages.on('data', (message: string) => driver.text(`echo:${message}`))
    driver.start()
  })
  return { port: await listen(t, server), versions }
}

/** A hixie-76 client handshake: the request head with its two keys, the 8 key bytes, and the expected 16-byte answer. */
export function hixie76Handshake (path: string, host: string): { head: string, key3: Buffer, answer: Buffer } {
  const key = (n: number, spaces: number): string => {
    // draft-hixie-76 §4.1: the digits of the key divided by its number of spaces give the number.
    const digits = String(n * spaces)
    let out = ''
    for (let i = 0; i < digits.length; i++) out += digits[i] + (i < spaces ? ' ' : '')
    return `x${out}z`
  }
  const n1 = 155712099
  const n2 = 173347027
  const key3 = Buffer.from('Tm[K T2u', 'latin1')
  const head = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n` +
    `Origin: http://${host}\r\nSec-WebSocket-Key1: ${key(n1, 4)}\r\nSec-WebSocket-Key2: ${key(n2, 3)}\r\n\r\n`
  const challenge = Buffer.alloc(16)
  challenge.writeUInt32BE(n1, 0)
  challenge.writeUInt32BE(n2, 4)
  key3.copy(challenge, 8)
  return { head, key3, answer: createHash('md5').update(challenge).digest() }
}

/** A hixie-76 text frame: 0x00, UTF-8, 0xFF. */
export function hixieFrame (text: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), Buffer.from(text, 'utf8'), Buffer.from([0xff])])
}
