import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import * as errors from '../src/errors.ts'

test('every error code is in the README Errors table and the table lists no other', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const table = readme.slice(readme.indexOf('## Errors'))
  const documented = [...table.matchAll(/^\| `(SWY_ERR_[A-Z0-9_]+)`/gm)].map(m => m[1]).sort()
  assert.deepEqual(documented, [...errors.errorCodes].sort())
})

test('every error constructor has a unique code listed in errorCodes', () => {
  const codes = Object.values(errors)
    .filter((v): v is new (...a: unknown[]) => Error & { code: string } => typeof v === 'function')
    .map(E => new E('a', 'b', 'c').code)
  assert.equal(new Set(codes).size, codes.length)
  assert.deepEqual(codes.sort(), [...errors.errorCodes].sort())
})

test('wire errors carry the status sent to the client', () => {
  assert.equal(new errors.SwyH2ConnectProtocolDisabledError('c', 'h:1').statusCode, 502)
  assert.equal(new errors.SwyH2WebsocketAcceptError('c', 'no').statusCode, 502)
  assert.equal(new errors.SwyH2SessionError('c', 'h:1', 'x').statusCode, 503)
  assert.equal(new errors.SwyH2PlainConnectError('a:443').statusCode, 403)
})
