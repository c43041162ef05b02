import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'

/** The request's own `additionalHeaders` while the body headers are hidden (`undefined`: it had none). */
const kHidden = Symbol('switchyard.hiddenBodyHeaders')

type Hookable = FastifyRequest & { additionalHeaders?: Record<string, unknown>, [kHidden]?: { previous: Record<string, unknown> | undefined } }

/**
 * A proxy sends any request body on as it came — every content type, none, or a malformed one — streamed
 * and byte for byte. Fastify would parse it first, or answer 415 for a type it has no parser for, so on a
 * route whose handler is `proxy` the body's framing headers are hidden from Fastify's body step: it then
 * sees a request without a body, runs no parser, and `proxy` reads the raw body itself. Only the route's
 * view changes (`request.headers`; `request.raw` keeps every header), and only until the next hook.
 *
 * Route-level preParsing hook, appended after the route's own: it is the last step before the body step.
 */
export function hideBodyFromParsers (request: FastifyRequest, _reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void): void {
  const r = request as Hookable
  const previous = r.additionalHeaders
  r[kHidden] = { previous }
  r.additionalHeaders = { ...previous, 'content-type': undefined, 'content-length': undefined, 'transfer-encoding': undefined }
  done(null, payload)
}

/**
 * Root preValidation hook, registered with core (so before the application's own): the body step is
 * over, so hooks and the handler see the request's headers again.
 */
export function restoreBodyHeaders (request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  const r = request as Hookable
  const hidden = r[kHidden]
  if (hidden !== undefined) {
    r.additionalHeaders = hidden.previous
    r[kHidden] = undefined
  }
  done()
}

/** Appends `hideBodyFromParsers` to a route's preParsing hooks. */
export function streamBodyOf (routeOptions: RouteOptions): void {
  const own = routeOptions.preParsing
  const hooks = own === undefined ? [] : Array.isArray(own) ? [...own] : [own]
  hooks.push(hideBodyFromParsers as never)
  routeOptions.preParsing = hooks as never
}
