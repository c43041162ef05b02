// The quick-start demo (`npm run mesh` at the repository root): a Fastify front proxy with
// @switchyard/core in front of an embedded WebSocket echo upstream, both on loopback.
import { startDemo } from './demo.ts'

const asked = process.env.PORT === undefined || process.env.PORT === '' ? 8080 : Number(process.env.PORT)
if (!Number.isInteger(asked) || asked < 0 || asked > 65535) {
  console.error(`PORT must be a port number (0-65535), got ${JSON.stringify(process.env.PORT)}`)
  process.exit(1)
}

const demo = await startDemo({ port: asked, fastify: { logger: { level: process.env.LOG_LEVEL ?? 'warn' } } })
const ws = demo.url.replace(/^http/, 'ws') + '/echo'
const tryIt = `node --experimental-websocket -e "const w=new WebSocket('${ws}');` +
  `w.onopen=()=>w.send('hello through switchyard');w.onmessage=(e)=>{console.log('echo:',e.data);w.close()}"`

if (demo.portFallback) console.log(`port ${asked} is busy: listening on a free port instead`)
console.log(`switchyard demo: front proxy ${demo.url} -> WebSocket echo upstream 127.0.0.1:${demo.upstream.port}`)
console.log(`  WebSocket route: ${ws}   stats: ${demo.url}/stats`)
console.log(`  try it (another terminal): ${tryIt}`)
console.log('  Ctrl-C to stop')

let stopping = false
async function stop (signal: NodeJS.Signals): Promise<void> {
  if (stopping) process.exit(130) // a second Ctrl-C: stop now
  stopping = true
  console.log(`\n${signal}: closing tunnels and servers`)
  try {
    await demo.close()
    process.exit(0)
  } catch (err) {
    console.error(err)
    process.exit(1)
  }
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
