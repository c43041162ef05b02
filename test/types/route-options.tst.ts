import { describe, expect, test } from 'tstyche'
import Fastify from 'fastify'
import { proxy } from '@switchyard/core'
import '@switchyard/websocket-tcp'

// The route options core merges into Fastify's (RouteShorthandOptions and app.route's RouteOptions).
const app = Fastify()

describe('upstream', () => {
  test('accepts a cluster, rewrites, timeouts and retries', () => {
    expect(app.get('/chat', {
      upstream: { cluster: 'chat', prefixRewrite: '/', hostRewrite: 'svc', timeout: 1000, idleTimeout: 60_000, retries: { numRetries: 2, retryOn: ['5xx', 'reset'] } }
    }, proxy)).type.not.toRaiseError()
    expect(app.get('/chat', { upstream: { weightedClusters: [{ cluster: 'a', weight: 90 }, { cluster: 'b', weight: 10 }] } }, proxy)).type.not.toRaiseError()
    expect(app.route({ method: 'GET', url: '/chat', upstream: { cluster: 'chat' }, handler: proxy })).type.not.toRaiseError()
  })

  test('a misspelt field is a type error', () => {
    expect(app.get('/chat', { upstream: { clustr: 'chat' } }, proxy)).type.toRaiseError("'clustr' does not exist")
    expect(app.route({ method: 'GET', url: '/chat', upstream: { prefixRewite: '/' }, handler: proxy })).type.toRaiseError("'prefixRewite' does not exist")
  })

  test('a field of the wrong type is a type error', () => {
    expect(app.get('/chat', { upstream: { cluster: 1 } }, proxy)).type.toRaiseError()
    expect(app.get('/chat', { upstream: { retries: { numRetries: 1, retryOn: ['sometimes'] } } }, proxy)).type.toRaiseError()
  })
})

describe('upgradeConfigs', () => {
  test('accepts a type with or without enabled', () => {
    expect(app.get('/chat', { upstream: { cluster: 'chat' }, upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo', enabled: false }] }, proxy)).type.not.toRaiseError()
  })

  test('a misspelt field or a wrong type is a type error', () => {
    expect(app.get('/chat', { upstream: { cluster: 'chat' }, upgradeConfigs: [{ upgradeTyp: 'websocket' }] }, proxy)).type.toRaiseError()
    expect(app.get('/chat', { upstream: { cluster: 'chat' }, upgradeConfigs: [{ upgradeType: 'websocket', enabled: 'yes' }] }, proxy)).type.toRaiseError()
  })
})

describe('useWebsocket', () => {
  test('accepts a boolean', () => {
    expect(app.get('/legacy', { useWebsocket: true, upstream: { cluster: 'chat' } }, proxy)).type.not.toRaiseError()
  })

  test('anything else is a type error', () => {
    expect(app.get('/legacy', { useWebsocket: 'yes', upstream: { cluster: 'chat' } }, proxy)).type.toRaiseError()
  })
})

describe('connectConfig', () => {
  test('accepts {} on a CONNECT route', () => {
    expect(app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: {}, handler: proxy })).type.not.toRaiseError()
  })

  test('a field or a value that is not an object is a type error', () => {
    expect(app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: { maxStreamDuration: 1 }, handler: proxy })).type.toRaiseError()
    expect(app.route({ method: 'CONNECT', url: '/*', upstream: { cluster: 'egress' }, connectConfig: true, handler: proxy })).type.toRaiseError()
  })
})

test('a misspelt route option is still Fastify\'s business: unknown top-level keys are type errors', () => {
  expect(app.get('/chat', { upstreams: { cluster: 'chat' } }, proxy)).type.toRaiseError("'upstreams' does not exist")
})
