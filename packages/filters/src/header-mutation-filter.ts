import type { Filter, Headers } from '@switchyard/core'
import { SwyFilterOptionsError } from './errors.js'

/** Edits of one direction's headers, applied in the order remove, set, add. Names are case-insensitive. */
export interface HeaderMutations {
  /** Appended: a header already present becomes a list (sent as repeated lines). */
  add?: Record<string, string | string[]>
  /** Replaces any value already present. */
  set?: Record<string, string>
  /** Removed if present. */
  remove?: string[]
}

export interface HeaderMutationOptions {
  /** Edits of the request headers before they reach the upstream (upgrade handshakes included). */
  request?: HeaderMutations
  /** Edits of every response the downstream gets: the `101`, upstream answers and local replies. */
  response?: HeaderMutations
}

interface Compiled {
  remove: string[]
  set: Array<[string, string]>
  add: Array<[string, string[]]>
}

/**
 * Adds, sets and removes request and response headers (Envoy `request_headers_to_add` /
 * `response_headers_to_remove`). Headers only: it has no data callbacks, so a tunnel through it
 * stays a straight write.
 */
export function createHeaderMutationFilter (options: HeaderMutationOptions): Filter {
  const request = compile(options?.request, 'request')
  const response = compile(options?.response, 'response')
  const filter: { name: string, onRequestHeaders?: Filter['onRequestHeaders'], onResponseHeaders?: Filter['onResponseHeaders'] } = {
    name: 'header-mutation'
  }
  if (request !== undefined) filter.onRequestHeaders = (_ctx, headers) => { apply(request, headers) }
  if (response !== undefined) filter.onResponseHeaders = (_ctx, _status, headers) => { apply(response, headers) }
  return filter
}

function compile (m: HeaderMutations | undefined, field: string): Compiled | undefined {
  if (m === undefined) return undefined
  if (typeof m !== 'object' || m === null) throw new SwyFilterOptionsError(field, 'header-mutation', 'must be an object')
  const remove = (m.remove ?? []).map((name, i) => checkName(name, `${field}.remove[${i}]`))
  const set = Object.entries(m.set ?? {}).map(([k, v]): [string, string] => [checkName(k, `${field}.set`), checkValue(v, `${field}.set.${k}`)])
  const add = Object.entries(m.add ?? {}).map(([k, v]): [string, string[]] =>
    [checkName(k, `${field}.add`), (Array.isArray(v) ? v : [v]).map((x) => checkValue(x, `${field}.add.${k}`))])
  return { remove, set, add }
}

// RFC 9110 §5.1 token; §5.5 field values carry no CR, LF or NUL.
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

function checkName (name: string, field: string): string {
  if (typeof name !== 'string' || !token.test(name)) throw new SwyFilterOptionsError(field, 'header-mutation', `"${String(name)}" is not a header name`)
  return name.toLowerCase()
}

function checkValue (value: string, field: string): string {
  if (typeof value !== 'string' || /[\r\n\0]/.test(value)) throw new SwyFilterOptionsError(field, 'header-mutation', 'must be a string without CR, LF or NUL')
  return value
}

function apply (c: Compiled, headers: Headers): void {
  for (const name of c.remove) delete headers[name]
  for (const [name, value] of c.set) headers[name] = value
  for (const [name, values] of c.add) {
    const prev = headers[name]
    if (prev === undefined) headers[name] = values.length === 1 ? values[0]! : values.slice()
    else headers[name] = (Array.isArray(prev) ? prev : [prev]).concat(values)
  }
}
