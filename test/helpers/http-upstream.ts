/** A plain `node:http` upstream that answers every request with JSON describing it and its own name. */
import http from 'node:http'
import type { TestContext } from 'node:test'
import { listen } from './net.ts'

export interface SeenRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: string
}

export interface HttpUpstream {
  port: number
  server: http.Server
  name: string
  requests: SeenRequest[]
}

/**
 * `respond` may answer a request itself (return true); otherwise the upstream replies 200 with
 * `{ name, method, url, headers, body }`.
 */
export async function httpUpstream (
  t: TestContext,
  name: string,
  respond?: (req: SeenRequest, res: http.ServerResponse, index: number) => boolean
): Promise<HttpUpstream> {
  const requests: SeenRequest[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() }
      const index = requests.push(seen) - 1
      if (respond?.(seen, res, index) === true) return
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ name, ...seen }))
    })
  })
  const port = await listen(t, server)
  return { port, server, name, requests }
}
