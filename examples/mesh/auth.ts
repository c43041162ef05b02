import type { FastifyReply, FastifyRequest } from 'fastify'
import { createAuthorizationFilter, type AuthorizationDecision } from '@switchyard/filters'
import type { Filter } from '@switchyard/core'

/** The cookie that carries the mesh token for the page's WebSockets (they cannot set Authorization). */
export const TOKEN_COOKIE = 'mesh_token'

/**
 * The front's one credential, two ways in: `Authorization: Bearer <token>` (terminals) or the
 * `mesh_token` cookie the page is served with (browsers cannot set headers on a WebSocket).
 * New-style routes check it in the filter chain; the legacy route runs no filter (Envoy's
 * `use_websocket` was a TCP proxy), so it checks the same thing in an `onRequest` hook.
 */
export function meshAuthorization (token: string, onHookRefusal: (status: number) => void): { filter: Filter, onRequest: (request: FastifyRequest, reply: FastifyReply) => Promise<void> } {
  const byCookie = (request: FastifyRequest): AuthorizationDecision => {
    const value = new RegExp(`(?:^|;\\s*)${TOKEN_COOKIE}=([^;]*)`).exec(request.headers.cookie ?? '')?.[1]
    // Credentials presented but wrong: 403; none at all: 401 (RFC 9110 §15.5.2, §15.5.4).
    if (value === undefined) return request.headers.authorization === undefined ? { status: 401 } : false
    return safeDecode(value) === token
  }
  return {
    filter: createAuthorizationFilter({ bearerTokens: [token], verify: byCookie }),
    async onRequest (request, reply) {
      if (request.headers.authorization === `Bearer ${token}`) return
      const decision = byCookie(request)
      if (decision === true) return
      const status = decision === false ? 403 : decision.status
      onHookRefusal(status)
      if (status === 401) reply.header('www-authenticate', 'Bearer realm="switchyard"')
      await reply.code(status).header('connection', 'close').send()
    }
  }
}

function safeDecode (value: string): string | undefined {
  try {
    return decodeURIComponent(value)
  } catch {
    return undefined
  }
}
