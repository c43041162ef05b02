/**
 * A raw HTTP/1.1 client over `node:net`: writes exact bytes, gathers every byte it receives, and parses
 * the first response head.
 */
import type net from 'node:net'
import type { TestContext } from 'node:test'
import { connect } from './net.ts'

export interface ResponseHead {
  status: number
  /** The head as received, up to and including the blank line. */
  raw: string
  /** Header names lower-cased; repeated headers joined with ', '. */
  headers: Record<string, string>
  /** Bytes received after the head. */
  rest: Buffer
}

/** Parses the first response head in `data`, or returns null when it is not complete yet. */
export function parseHead (data: Buffer): ResponseHead | null {
  const end = data.indexOf('\r\n\r\n')
  if (end === -1) return null
  const raw = data.toString('latin1', 0, end + 4)
  const [statusLine, ...lines] = raw.slice(0, -4).split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? NaN)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    const name = line.slice(0, i).trim().toLowerCase()
    const value = line.slice(i + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  return { status, raw, headers, rest: data.subarray(end + 4) }
}

export interface RawClient {
  socket: net.Socket
  /** Every byte received so far. */
  readonly received: Buffer
  /** Resolves once the received bytes satisfy `match`; rejects if the connection ends first. */
  until (match: (data: Buffer) => boolean): Promise<Buffer>
  /** Resolves with the first response head once it is complete. */
  head (): Promise<ResponseHead>
  /** Resolves with the response head and `n` more bytes after it. */
  headAnd (n: number): Promise<ResponseHead>
  /** Resolves when the socket has closed. */
  closed: Promise<void>
  /**
   * Resolves when the server has finished the connection: FIN received (the client is allowHalfOpen, so
   * it would otherwise wait for its own end) or the socket closed/reset.
   */
  done: Promise<void>
  /** True once the server half-closed (FIN received). */
  readonly ended: boolean
  readonly error: (Error & { code?: string }) | undefined
}

/**
 * Connects to the proxy (half-open allowed unless `allowHalfOpen: false`), writes `firstBytes` if given.
 * `t.after` destroys the socket.
 */
export async function rawClient (t: TestContext, port: number, firstBytes?: string | Buffer, opts: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
  const socket = await connect(t, port, opts)
  let received = Buffer.alloc(0)
  let error: (Error & { code?: string }) | undefined
  let ended = false
  const waiters = new Set<() => void>()
  const wake = (): void => { for (const w of [...waiters]) w() }
  socket.on('data', (chunk: Buffer) => { received = Buffer.concat([received, chunk]); wake() })
  socket.on('end', () => { ended = true; wake() })
  socket.on('error', (err) => { error = err })
  const closed = new Promise<void>((resolve) => socket.once('close', () => { wake(); resolve() }))
  const done = new Promise<void>((resolve) => {
    socket.once('end', () => resolve())
    socket.once('close', () => resolve())
  })
  if (firstBytes !== undefined) socket.write(firstBytes)
  const until = (match: (data: Buffer) => boolean): Promise<Buffer> => new Promise((resolve, reject) => {
    const check = (): void => {
      if (match(received)) { waiters.delete(check); resolve(received); return }
      if (socket.destroyed || ended) {
        waiters.delete(check)
        reject(new Error(`connection ended before a match; received: ${JSON.stringify(received.toString('latin1').slice(0, 400))}`))
      }
    }
    waiters.add(check)
    check()
  })
  return {
    socket,
    get received () { return received },
    get error () { return error },
    get ended () { return ended },
    closed,
    done,
    until,
    async head () {
      await until((d) => parseHead(d) !== null)
      return parseHead(received)!
    },
    async headAnd (n: number) {
      await until((d) => { const h = parseHead(d); return h !== null && h.rest.length >= n })
      return parseHead(received)!
    }
  }
}

/** The bytes a raw client received, as latin1 text (for tests that read a tunnel's bytes as a string). */
export interface RawTextClient {
  socket: net.Socket
  /** All bytes so far, as latin1 text. */
  readonly received: string
  /** Resolves once `received` matches (a string to include, or a predicate); rejects if the connection ends first. */
  until (match: string | ((text: string) => boolean)): Promise<string>
  /** Resolves when the socket has closed (errors such as ECONNRESET are recorded in `error`). */
  closed: Promise<void>
  readonly error: (Error & { code?: string }) | undefined
  readonly ended: boolean
}

/** `rawClient` read as text; the write side ends with the peer's FIN unless `allowHalfOpen: true`. */
export async function rawTextClient (t: TestContext, port: number, firstBytes?: string | Buffer, opts: { allowHalfOpen?: boolean } = {}): Promise<RawTextClient> {
  const client = await rawClient(t, port, firstBytes, { allowHalfOpen: opts.allowHalfOpen === true })
  const text = (): string => client.received.toString('latin1')
  return {
    socket: client.socket,
    get received () { return text() },
    get error () { return client.error },
    get ended () { return client.ended },
    closed: client.closed,
    async until (match) {
      const test = typeof match === 'string' ? (s: string) => s.includes(match) : match
      await client.until((data) => test(data.toString('latin1')))
      return text()
    }
  }
}

/** An HTTP/1.1 request head. `headers` are written in order, as given. */
export function requestHead (method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
}

/** A generic (non-WebSocket) upgrade request head. */
export function upgradeHead (path: string, type: string, extra: Record<string, string | number> = {}, method = 'GET'): string {
  return requestHead(method, path, { Host: 'front.example', Connection: 'Upgrade', Upgrade: type, ...extra })
}

/** An RFC 6455 upgrade request head with a fixed valid key (its accept is `WS_ACCEPT`). */
export function wsUpgradeHead (path: string, extra: Record<string, string | number> = {}): string {
  return upgradeHead(path, 'websocket', { 'Sec-WebSocket-Version': 13, 'Sec-WebSocket-Key': WS_KEY, ...extra })
}

export const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
export const WS_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='
