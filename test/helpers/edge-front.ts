/**
 * The front the request-target and slow-client tests attack: core and @switchyard/websocket-tcp over one
 * recording HTTP/1.1 upstream, with a plain route, a new-style WebSocket route and a legacy one, each also
 * in a variant whose upstream never answers; plus the bounded-close check those tests end with.
 */
import type net from 'node:net'
import type { TestContext } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { proxy, type SwitchyardOptions } from '@switchyard/core'
import assert from 'node:assert/strict'
import { startLegacyProxy } from './legacy-net.ts'
import { watchHandles } from './leak-check.ts'
import { accept, answerPlain, isUpgradeHead, rawUpstream, type RawUpstream } from './echo-upstream.ts'

/** The grace period the edge tests close with. */
export const GRACE = 100

export interface EdgeFront {
  app: FastifyInstance
  port: number
  upstream: RawUpstream
  /** Every connection the upstream accepted whose request head arrived, in order. */
  upstreamSockets: net.Socket[]
}

/**
 * Bytes `/big` declares: far more than the kernel buffers on the way hold, so a client that does not read
 * stalls it. They are written only as fast as the proxy takes them.
 */
export const BIG = 1024 * 1024 * 1024
const CHUNK = Buffer.alloc(64 * 1024, 'b')

/**
 * The upstream: a path containing `silent` is never answered, one containing `refuse-big` gets a 426 with a
 * `BIG` body; an upgrade gets a 101 and an echo; `/big`
 * gets `BIG` bytes; anything else a small 200 (`plain <method> <path>`) once its `Content-Length` body is in. Every connection it accepts ends
 * its side when the proxy ends its own.
 */
async function edgeUpstream (t: TestContext, sockets: net.Socket[]): Promise<RawUpstream> {
  const upstream = await rawUpstream(t, (conn) => {
    const socket = conn.socket
    sockets.push(socket)
    const path = conn.head.split(' ')[1] ?? '/'
    if (path.includes('silent')) return
    if (path.includes('refuse-big')) {
      streamBig(socket, '426 Upgrade Required')
      return
    }
    if (isUpgradeHead(conn.head)) {
      accept(conn)
      if (conn.rest.length > 0) socket.write(conn.rest)
      socket.on('data', (d: Buffer) => socket.write(d))
      return
    }
    if (path.startsWith('/big')) {
      streamBig(socket, '200 OK')
      return
    }
    // As an application would: the answer once the whole body is in (the proxy streams it as it comes).
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(conn.head)?.[1] ?? 0)
    let received = conn.rest.length
    if (received >= length) { answerPlain(conn); return }
    const onData = (d: Buffer): void => {
      received += d.length
      if (received < length) return
      socket.off('data', onData)
      answerPlain(conn)
    }
    socket.on('data', onData)
  })
  // Including connections that end before sending a head (undici reconnects after an aborted response).
  upstream.server.on('connection', (socket: net.Socket) => socket.once('end', () => socket.end()))
  return upstream
}

/** Answers `status` with a `BIG` body, written only as fast as the proxy takes it. */
function streamBig (socket: net.Socket, status: string): void {
  socket.write(`HTTP/1.1 ${status}\r\ncontent-length: ${BIG}\r\nconnection: close\r\n\r\n`)
  let left = BIG
  const pump = (): void => {
    while (left > 0 && !socket.destroyed) {
      left -= CHUNK.length
      if (!socket.write(CHUNK)) { socket.once('drain', pump); return }
    }
    if (left <= 0) socket.end()
  }
  pump()
}

/**
 * Core (`up` cluster, WebSocket enabled, `core` merged in) and websocket-tcp on 127.0.0.1. Routes:
 * `/hello`, `/big`, `/silent` (GET and POST, proxied, no route timeout), `/ws`, `/ws-silent` and
 * `/ws-refuse-big` (new style, no route timeout), `/legacy`, `/legacy-silent` and `/legacy-refuse-big`
 * (`useWebsocket`).
 */
export async function startEdgeFront (t: TestContext, core: Partial<SwitchyardOptions> = {}): Promise<EdgeFront> {
  const upstreamSockets: net.Socket[] = []
  const upstream = await edgeUpstream(t, upstreamSockets)
  const { app, port } = await startLegacyProxy(t, {
    clusters: { up: { endpoints: [`127.0.0.1:${upstream.port}`] } },
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    ...core
  }, (app) => {
    for (const url of ['/hello', '/big', '/silent']) {
      app.route({ method: ['GET', 'POST'], url, upstream: { cluster: 'up', timeout: 0 }, handler: proxy })
    }
    app.get('/ws', { upstream: { cluster: 'up', timeout: 0 } }, proxy)
    app.get('/ws-silent', { upstream: { cluster: 'up', timeout: 0 } }, proxy)
    app.get('/ws-refuse-big', { upstream: { cluster: 'up', timeout: 0 } }, proxy)
    app.get('/legacy', { useWebsocket: true, upstream: { cluster: 'up' } }, proxy)
    app.get('/legacy-silent', { useWebsocket: true, upstream: { cluster: 'up' } }, proxy)
    app.get('/legacy-refuse-big', { useWebsocket: true, upstream: { cluster: 'up' } }, proxy)
  })
  return { app, port, upstream, upstreamSockets }
}

/** A WebSocket upgrade head (RFC 6455 key and version) with `extra` header lines. */
export function wsHead (path: string, host = 'front.test', extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`
}

/**
 * True when `app.close()` returns within `grace` ms plus the one second core allows after it (and half a
 * second of slack for a loaded machine), as the hostile-traffic contract asks.
 */
export async function closesWithin (app: FastifyInstance, grace: number): Promise<boolean> {
  const bound = new AbortController()
  const late = delay(grace + 1000 + 500, false, { signal: bound.signal }).catch(() => false)
  const closed = await Promise.race([app.close().then(() => true), late])
  bound.abort()
  return closed
}

/**
 * `startEdgeFront` with `shutdownGracePeriod: GRACE`, and a handle baseline taken once it listens;
 * `settled()` closes the front (within the grace period plus one second) and waits for every socket
 * opened since to close, the live handles back at the baseline.
 */
export async function startWatchedEdgeFront (t: TestContext, core: Partial<SwitchyardOptions> = {}): Promise<EdgeFront & { settled (): Promise<void> }> {
  const front = await startEdgeFront(t, { shutdownGracePeriod: GRACE, ...core })
  const watch = watchHandles()
  await watch.mark()
  return {
    ...front,
    async settled () {
      assert.equal(await closesWithin(front.app, GRACE), true, 'app.close() within the grace period plus one second')
      await watch.settled()
    }
  }
}
