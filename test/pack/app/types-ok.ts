// Type-checked by pack.test.ts in the fresh app under NodeNext, node16 and bundler, with skipLibCheck: false:
// the declaration merging of route options, the plugin options and the literal error types.
import Fastify from 'fastify'
import switchyard, { proxy, errors, FilterStatus, type Filter } from '@switchyard/core'
import { defineError } from '@switchyard/core/internal'
import websocketTcp, { errors as legacyErrors } from '@switchyard/websocket-tcp'
import h2Connect, { errors as h2Errors } from '@switchyard/h2-connect'
import { createAccessLogFilter, errors as filterErrors } from '@switchyard/filters'

const tag: Filter = { name: 'tag', onRequestHeaders: (_ctx, headers) => { headers['x-tag'] = '1'; return FilterStatus.Continue } }
const app = Fastify()
await app.register(switchyard, {
  clusters: { chat: { endpoints: ['127.0.0.1:9000'] }, mesh: { endpoints: ['http://sidecar:8443'], protocol: 'http2' } },
  upgradeConfigs: [{ upgradeType: 'websocket' }, { upgradeType: 'foo', filters: [] }],
  filters: [createAccessLogFilter(), tag]
})
await app.register(websocketTcp, { trustUpstream: false })
await app.register(h2Connect, { preserveMethod: true })
app.get('/chat', { upstream: { cluster: 'chat', prefixRewrite: '/', timeout: 1000 }, upgradeConfigs: [{ upgradeType: 'websocket', enabled: true }] }, proxy)
app.get('/legacy', { useWebsocket: true, upstream: { weightedClusters: [{ cluster: 'chat', weight: 1 }] } }, proxy)

const code: 'SWY_ERR_FILTER' = new errors.SwyFilterError('f', 'x').code
const status: 500 = new errors.SwyFilterError('f', 'x').statusCode
const legacyCode: 'SWY_ERR_WSTCP_CONNECT' = new legacyErrors.SwyWstcpConnectError('c', 'e', 'x').code
const h2Code: 'SWY_ERR_H2_OPTIONS' = new h2Errors.SwyH2OptionsError('o', 'x').code
const filterCode: 'SWY_ERR_FILTER_OPTIONS' = new filterErrors.SwyFilterOptionsError('o', 'f', 'x').code
const Custom = defineError('MY_ERR_X', 'x %s', 418)
const customStatus: 418 = new Custom('y').statusCode
export { code, status, legacyCode, h2Code, filterCode, customStatus }
