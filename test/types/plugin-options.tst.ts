import { describe, expect, test } from 'tstyche'
import Fastify from 'fastify'
import switchyard, { errors, type SwitchyardOptions } from '@switchyard/core'
import websocketTcp, { errors as legacyErrors } from '@switchyard/websocket-tcp'
import h2Connect from '@switchyard/h2-connect'
import { createAccessLogFilter, createBufferFilter } from '@switchyard/filters'

const app = Fastify()

describe('@switchyard/core', () => {
  test('accepts clusters, upgrade configs and filters', () => {
    expect(app.register(switchyard, {
      clusters: { chat: { endpoints: ['127.0.0.1:9000'], connectTimeout: 1000 }, mesh: { endpoints: ['http://sidecar:8443'], protocol: 'http2' } },
      upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo', filters: [], enabled: true }],
      filters: [createAccessLogFilter(), createBufferFilter({ maxRequestBytes: 1024 })]
    })).type.not.toRaiseError()
  })

  test('a misspelt option is a type error', () => {
    expect(app.register(switchyard, { clusters: {}, upgradeConfig: [] })).type.toRaiseError("'upgradeConfig' does not exist")
    expect(app.register(switchyard, { clusters: { chat: { endpoint: ['127.0.0.1:9000'] } } })).type.toRaiseError()
    expect(app.register(switchyard, { clusters: { chat: { endpoints: ['127.0.0.1:9000'], protocol: 'h3' } } })).type.toRaiseError()
  })

  test('SwitchyardOptions is what register takes', () => {
    expect<SwitchyardOptions>().type.toBeAssignableFrom({ clusters: { chat: { endpoints: ['127.0.0.1:9000'] } } })
  })
})

describe('@switchyard/websocket-tcp', () => {
  test('accepts trustUpstream, and nothing else', () => {
    expect(app.register(websocketTcp, { trustUpstream: true })).type.not.toRaiseError()
    expect(app.register(websocketTcp, { trustUpsteam: true })).type.toRaiseError("'trustUpsteam' does not exist")
    expect(app.register(websocketTcp, { trustUpstream: 'yes' })).type.toRaiseError()
  })
})

describe('@switchyard/h2-connect', () => {
  test('accepts preserveMethod, and nothing else', () => {
    expect(app.register(h2Connect, { preserveMethod: true })).type.not.toRaiseError()
    expect(app.register(h2Connect, { preserveMetod: true })).type.toRaiseError("'preserveMetod' does not exist")
    expect(app.register(h2Connect, { preserveMethod: 1 })).type.toRaiseError()
  })
})

describe('errors', () => {
  test('each error names its code and status as literal types', () => {
    expect(new errors.SwyFilterError('f', 'x').code).type.toBe<'SWY_ERR_FILTER'>()
    expect(new errors.SwyUpstreamTimeoutError('c', 1).statusCode).type.toBe<504>()
    expect(new legacyErrors.SwyWstcpConnectError('c', 'e', 'x').code).type.toBe<'SWY_ERR_WSTCP_CONNECT'>()
  })
})
