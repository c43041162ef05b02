/** Who a function belongs to, from its script URL: our packages, Fastify (and its own deps), Node, V8, other. */
export function classify (url: string, functionName: string): string {
  if (functionName === '(garbage collector)') return 'V8: garbage collector'
  if (functionName === '(program)') return 'V8/native: (program)'
  if (functionName === '(idle)') return 'idle'
  const ours = /\/packages\/(core|websocket-tcp|h2-connect|filters)\//.exec(url)
  if (ours !== null) return `ours: ${ours[1]}`
  if (url.includes('/bench/')) return 'bench harness'
  const dep = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (dep !== null) {
    const name = dep[1]
    if (/^(fastify|@fastify\/.*|find-my-way|avvio|pino|toad-cache|fast-querystring|rfdc|light-my-request|secure-json-parse|fast-uri|ajv|fast-json-stringify|abstract-logging|process-warning|fastify-plugin)$/.test(name)) return 'Fastify'
    return `dependency: ${name}`
  }
  if (url.startsWith('node:')) return 'Node (JS)'
  if (url === '') return 'Node/V8 native'
  return 'other'
}

/** `name (file:line)` with the path shortened to what identifies it. */
export function where (url: string, functionName: string, line: number): string {
  const name = functionName === '' ? '(anonymous)' : functionName
  if (url === '') return name
  const short = url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?/, '')
    .replace(/^.*\/packages\//, '')
    .replace(/^.*\/bench\//, 'bench/')
  return `${name} (${short}:${line + 1})`
}
