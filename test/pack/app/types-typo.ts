// Must NOT type-check (pack.test.ts expects an error naming `clustr`): a typo in a route option.
import Fastify from 'fastify'
import switchyard, { proxy } from '@switchyard/core'

const app = Fastify()
await app.register(switchyard, { clusters: { x: { endpoints: ['127.0.0.1:9000'] } } })
app.get('/chat', { upstream: { clustr: 'x' } }, proxy)
