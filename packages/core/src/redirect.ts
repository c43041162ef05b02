import type { FastifyReply, FastifyRequest } from 'fastify'
import type { RedirectOptions } from './route-options.js'

/** Envoy's redirect route action: scheme, host and path replaced as configured, 301 by default. */
export function sendRedirect (request: FastifyRequest, reply: FastifyReply, redirect: RedirectOptions): FastifyReply {
  const url = request.raw.url ?? '/'
  const q = url.indexOf('?')
  const query = q === -1 ? '' : url.slice(q)
  const scheme = redirect.schemeRedirect ?? request.protocol
  const host = redirect.hostRedirect ?? request.host
  const path = redirect.pathRedirect !== undefined
    ? (redirect.pathRedirect.includes('?') ? redirect.pathRedirect : redirect.pathRedirect + query)
    : url
  return reply.code(redirect.responseCode ?? 301).header('location', `${scheme}://${host}${path}`).send()
}
