import replyFrom from '@fastify/reply-from'
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import type { Agent } from 'undici'

export type ReplyFrom = (this: FastifyReply, source: string, opts: Record<string, unknown>) => FastifyReply

/**
 * `@fastify/reply-from`'s `reply.from`, owned privately. Registered as a decorator it would be shared with
 * any `@fastify/http-proxy` on the server, and the first registration's options (its `base`, its pool)
 * would win; captured here, the proxy handler always uses its own undici agent, whatever the order.
 */
export function createReplyFrom (agent: Agent, log: FastifyBaseLogger): { from: ReplyFrom, close (): void } {
  let from: ReplyFrom | undefined
  const onClose: Array<(instance: unknown, done: () => void) => void> = []
  const host = {
    log,
    decorateReply (name: string, fn: ReplyFrom) { if (name === 'from') from = fn },
    addHook () {},
    onClose (fn: (instance: unknown, done: () => void) => void) { onClose.push(fn) }
  }
  ;(replyFrom as unknown as (instance: unknown, opts: unknown, done: (err?: Error) => void) => void)(
    host, { undici: agent, disableRequestLogging: true, destroyAgent: false }, (err) => { if (err) throw err })
  if (from === undefined) throw new Error('@fastify/reply-from did not provide reply.from')
  return { from, close: () => { for (const fn of onClose) fn(host, noop) } }
}

function noop (): void {}
