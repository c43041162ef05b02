import { randomBytes } from 'node:crypto'
import type { HashPolicy } from '../route-options.js'
import { hash32, hex64 } from './hash.js'

/** What a hash policy reads from a request (an H1 request, an upgrade, or an H2 stream alike). */
export interface HashInput {
  headers: Record<string, string | string[] | undefined>
  /** The request target, path and query (`/chat?room=7`). */
  url: string
  remoteAddress?: string
  remotePort?: number
  localAddress?: string
  localPort?: number
}

export interface HashResult {
  /** Unsigned 32-bit; absent when no policy yielded a value (the load balancer then picks at random). */
  hash?: number
  /** A `Set-Cookie` value to add to the response (the 101 or the plain answer): a generated sticky cookie. */
  setCookie?: string
}

export type HashFunction = (input: HashInput) => HashResult

const none: HashResult = Object.freeze({})

/**
 * Compiles a route's `upstream.hashPolicy` (Envoy's RouteAction.hash_policy) once, at route registration.
 * The first policy that yields a value is hashed. `terminal` is accepted for Envoy parity: stopping at
 * the first value makes every policy terminal (Envoy instead folds every yielding policy into one hash
 * until a terminal one yields).
 */
export function compileHashPolicy (policies: HashPolicy): HashFunction {
  const steps = policies.map(compileOne)
  return (input) => {
    for (const step of steps) {
      const result = step(input)
      if (result !== undefined) return result
    }
    return none
  }
}

type Step = (input: HashInput) => HashResult | undefined

function compileOne (policy: HashPolicy[number]): Step {
  if ('header' in policy) {
    const name = policy.header.toLowerCase()
    return ({ headers }) => {
      const value = headers[name]
      if (value === undefined) return undefined
      if (typeof value === 'string') return { hash: hash32(value) }
      if (value.length === 0) return undefined
      // Envoy sorts repeated values so that their order does not change the hash.
      return { hash: hash32([...value].sort().join('\0')) }
    }
  }
  if ('cookie' in policy) {
    const { name, ttl, path } = policy.cookie
    return (input) => {
      const value = cookieValue(input.headers.cookie, name)
      if (value !== undefined && value !== '') return { hash: hash32(value) }
      if (ttl === undefined) return undefined
      // No cookie but a ttl: choose now and tell the client (Envoy's generated cookie), so that its next
      // request, a Socket.IO poll or the WebSocket after it, lands on the same endpoint.
      const generated = generatedCookieValue(input)
      return { hash: hash32(generated), setCookie: setCookieValue(name, generated, ttl, path) }
    }
  }
  if ('sourceIp' in policy) {
    return ({ remoteAddress }) => (remoteAddress === undefined || remoteAddress === '' ? undefined : { hash: hash32(remoteAddress) })
  }
  const parameter = policy.queryParameter
  return ({ url }) => {
    const q = url.indexOf('?')
    if (q === -1) return undefined
    const value = new URLSearchParams(url.slice(q + 1)).get(parameter)
    return value === null ? undefined : { hash: hash32(value) }
  }
}

/** The value of cookie `name` (RFC 6265 §4.2 `cookie` header; the quotes of a quoted value removed). */
export function cookieValue (header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  const lines = typeof header === 'string' ? [header] : header
  for (const line of lines) {
    for (const pair of line.split(';')) {
      const eq = pair.indexOf('=')
      if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
      let value = pair.slice(eq + 1).trim()
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
      return value
    }
  }
  return undefined
}

// Envoy derives the value from the connection's two addresses, so requests of one connection get one
// cookie; without them, a random value.
function generatedCookieValue (input: HashInput): string {
  if (input.remoteAddress === undefined) return randomBytes(8).toString('hex')
  return hex64(`${input.remoteAddress}:${input.remotePort ?? ''}|${input.localAddress ?? ''}:${input.localPort ?? ''}`)
}

/** Envoy's `makeSetCookieValue`: `name="value"; Max-Age=s; Path=p; HttpOnly`; a ttl of 0 is a session cookie. */
function setCookieValue (name: string, value: string, ttl: number, path: string | undefined): string {
  let out = `${name}="${value}"`
  const seconds = Math.ceil(ttl / 1000)
  if (seconds > 0) out += `; Max-Age=${seconds}`
  if (path !== undefined && path !== '') out += `; Path=${path}`
  return `${out}; HttpOnly`
}
