import { createHash } from 'node:crypto'
import { FilterStatus, type Filter, type FilterContext, type Headers } from '@switchyard/core'
import { firstValue } from '@switchyard/core/internal'
import type { FastifyRequest } from 'fastify'
import { SwyFilterOptionsError } from './errors.js'

/** What `verify` answers: allow (`true`), refuse with 403 (`false`), or a refusal of your own. */
export type AuthorizationDecision = boolean | { status: 401 | 403, body?: string }

export interface AuthorizationOptions {
  /** Accepted `Authorization: Bearer <token>` values. */
  bearerTokens?: string[]
  /** Accepted values of an API-key header, e.g. `{ header: 'x-api-key', keys: ['k1'] }`. */
  apiKeys?: { header: string, keys: string[] }
  /**
   * Decides when no configured token or key matched. May be async: the request headers (and any bytes
   * behind them) wait, and nothing is sent upstream, until it settles.
   */
  verify? (request: FastifyRequest, headers: Headers): AuthorizationDecision | Promise<AuthorizationDecision>
  /** Realm named in `www-authenticate` on a 401 (default `switchyard`). */
  realm?: string
}

const sha = (s: string): string => createHash('sha256').update(s).digest('base64')

/**
 * Refuses requests and upgrade handshakes without valid credentials with a local reply, before anything
 * reaches the upstream: 401 (with `www-authenticate`) when none were presented, 403 when they were
 * wrong. Headers only: no data callbacks, so an accepted tunnel stays a straight write.
 */
export function createAuthorizationFilter (options: AuthorizationOptions): Filter {
  const { bearerTokens, apiKeys, verify } = options ?? {}
  if (bearerTokens === undefined && apiKeys === undefined && verify === undefined) {
    throw new SwyFilterOptionsError('bearerTokens|apiKeys|verify', 'authorization', 'give at least one')
  }
  if (bearerTokens !== undefined && !isStrings(bearerTokens)) throw new SwyFilterOptionsError('bearerTokens', 'authorization', 'must be an array of non-empty strings')
  if (apiKeys !== undefined && (typeof apiKeys.header !== 'string' || apiKeys.header === '' || !isStrings(apiKeys.keys))) {
    throw new SwyFilterOptionsError('apiKeys', 'authorization', 'must be { header: string, keys: non-empty strings[] }')
  }
  if (verify !== undefined && typeof verify !== 'function') throw new SwyFilterOptionsError('verify', 'authorization', 'must be a function')

  // Digests, not secrets, are compared: a Set lookup then leaks nothing about how much of a guess matched.
  const tokens = new Set((bearerTokens ?? []).map(sha))
  const keys = new Set((apiKeys?.keys ?? []).map(sha))
  const keyHeader = apiKeys?.header.toLowerCase()
  const realm = options.realm ?? 'switchyard'
  // RFC 9110 §11.6.1: a 401 names the scheme the client should use.
  const challenge = bearerTokens !== undefined || apiKeys === undefined
    ? `Bearer realm="${realm}"`
    : `ApiKey realm="${realm}", header="${keyHeader!}"`

  const refuse = (ctx: FilterContext, status: 401 | 403, body?: string): typeof FilterStatus.StopIteration => {
    ctx.sendLocalReply(status, body, status === 401 ? { 'www-authenticate': challenge } : undefined)
    return FilterStatus.StopIteration
  }
  const decide = (ctx: FilterContext, decision: AuthorizationDecision): FilterStatus => {
    if (decision === true) return FilterStatus.Continue
    if (decision === false || decision === undefined || decision === null) return refuse(ctx, 403)
    return refuse(ctx, decision.status === 401 ? 401 : 403, decision.body)
  }

  return {
    name: 'authorization',
    onRequestHeaders (ctx, headers) {
      const bearer = bearerOf(headers.authorization)
      if (bearer !== undefined && tokens.has(sha(bearer))) return FilterStatus.Continue
      const rawKey = keyHeader === undefined ? undefined : headers[keyHeader]
      const key = firstValue(rawKey)
      if (key !== undefined && keys.has(sha(key))) return FilterStatus.Continue
      if (verify !== undefined) {
        const decision = verify(ctx.request, headers)
        if (decision instanceof Promise) return decision.then((d) => decide(ctx, d))
        return decide(ctx, decision)
      }
      return refuse(ctx, bearer === undefined && key === undefined ? 401 : 403)
    }
  }
}

/** The token of `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive). */
function bearerOf (value: string | string[] | undefined): string | undefined {
  const v = firstValue(value)
  if (v === undefined) return undefined
  const m = /^bearer +(\S+)\s*$/i.exec(v)
  return m === null ? undefined : m[1]
}

function isStrings (v: unknown): v is string[] {
  return Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && s !== '')
}
