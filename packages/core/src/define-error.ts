import createError, { type FastifyErrorConstructor } from '@fastify/error'

/** The constructor of one coded error: `new E(...args).code` is the literal code, `.statusCode` the literal status. */
export type SwyErrorConstructor<C extends string, S extends number, Args extends unknown[] = [any?, any?, any?]> =
  FastifyErrorConstructor<{ code: C, statusCode: S }, Args>

/**
 * `@fastify/error`'s `createError` with its return type named through a type-only import, so emitted
 * declarations never reference the `createError` namespace of that `export =` module: under
 * `moduleResolution: bundler` its default import is a value only (TS2503 with `skipLibCheck: false`).
 */
export function defineError<C extends string, S extends number, Args extends unknown[] = [any?, any?, any?]> (
  code: C,
  message: string,
  statusCode: S
): SwyErrorConstructor<C, S, Args> {
  return createError<C, S, Args>(code, message, statusCode)
}
