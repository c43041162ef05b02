import { FilterStatus, type Filter, type FilterContext } from '@switchyard/core'
import { SwyFilterOptionsError } from './errors.js'

export interface BufferOptions {
  /** Largest request body held; one byte more answers 413. */
  maxRequestBytes: number
}

interface Buffered {
  bytes: number
  done: boolean
}

/**
 * Envoy's buffer filter, an HTTP-only filter: holds the request headers and body until the body is
 * complete, then sends them on together; a body over `maxRequestBytes` is answered 413 locally and
 * never reaches the upstream. An upgrade's request never ends, so in an upgrade's chain it holds the
 * handshake until the client has sent `maxRequestBytes` and then answers 413 (Envoy's own
 * integration test): give such a type its own chain (`upgradeConfigs: [{ upgradeType, filters: [] }]`).
 */
export function createBufferFilter (options: BufferOptions): Filter {
  const max = options?.maxRequestBytes
  if (typeof max !== 'number' || !(max >= 0) || !Number.isFinite(max)) {
    throw new SwyFilterOptionsError('maxRequestBytes', 'buffer', 'must be a finite number >= 0')
  }
  const kBuffered = Symbol('switchyard.buffer')
  const bufferedOf = (ctx: FilterContext): Buffered | undefined => ctx.state[kBuffered] as Buffered | undefined

  return {
    name: 'buffer',
    onRequestHeaders (ctx, _headers, endStream) {
      if (endStream) return FilterStatus.Continue
      ctx.state[kBuffered] = { bytes: 0, done: false } satisfies Buffered
      // Envoy `StopIteration` until `end_stream`: nothing (not even the headers) reaches the router yet.
      return FilterStatus.StopIteration
    },
    onRequestData (ctx, chunk, endStream) {
      const buffered = bufferedOf(ctx)
      if (buffered === undefined || buffered.done) return FilterStatus.Continue
      buffered.bytes += chunk.length
      if (buffered.bytes > max) {
        buffered.done = true
        ctx.sendLocalReply(413, 'Payload Too Large', { 'content-type': 'text/plain' })
        return FilterStatus.StopIteration
      }
      // Envoy's StopIterationAndBuffer: the chain keeps each stopped chunk for this filter.
      if (!endStream) return FilterStatus.StopIteration
      buffered.done = true
      // The body is complete: this chunk stops too, and resume() sends the held headers on, then every
      // chunk stopped here, in order (a resume() followed by Continue would mean the filter took them).
      ctx.resume()
      return FilterStatus.StopIteration
    }
  }
}
