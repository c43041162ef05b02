import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { bodyFraming, ChunkedScanner, closeSoon, type ResponseHead } from '@switchyard/core/internal'
import { closingHead } from './closing-head.js'

/**
 * Relays an upstream's refusal of the upgrade to the client: its head with `Connection: close`, then its
 * body as framed (Content-Length, chunked, or until the upstream closes), and not a byte more; then both
 * connections close. Backpressure: the upstream is read no faster than the client takes the body.
 * `toClient` writes to `down` (and counts the bytes).
 */
export function relayRefusal (
  up: Duplex, down: Duplex, toClient: (chunk: Buffer) => boolean, head: ResponseHead, rest: Buffer, method: string, log: FastifyBaseLogger
): void {
  toClient(Buffer.from(closingHead(head), 'latin1'))
  const framing = bodyFraming(head, method)
  let left = framing.kind === 'length' ? framing.length : 0
  const scanner = framing.kind === 'chunked' ? new ChunkedScanner() : undefined
  const done = (): void => {
    up.removeListener('data', relay)
    up.destroy()
    closeSoon(down)
  }
  const relay = (chunk: Buffer): void => {
    let end = -1
    if (framing.kind === 'length') {
      end = Math.min(left, chunk.length)
      left -= end
      if (left > 0) end = -1
    } else if (scanner !== undefined) {
      try {
        end = scanner.push(chunk)
      } catch (err) {
        log.debug({ err }, 'legacy websocket: malformed chunked body from upstream')
        up.destroy()
        down.destroy()
        return
      }
    }
    const out = end === -1 ? chunk : chunk.subarray(0, end)
    if (out.length > 0 && !toClient(out)) {
      up.pause()
      down.once('drain', () => up.resume())
    }
    if (end !== -1) done()
  }
  if (framing.kind === 'none' || (framing.kind === 'length' && left === 0)) {
    done()
    return
  }
  up.on('data', relay)
  // A close-delimited body (or a short one) ends when the upstream does.
  up.on('end', () => closeSoon(down))
  if (rest.length > 0) relay(rest)
}
