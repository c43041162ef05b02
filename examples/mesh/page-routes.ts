import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { TOKEN_COOKIE } from './auth.ts'

const pageDir = new URL('./page/', import.meta.url)

/** `GET /` (the chat and live view; sets the token cookie) and its script and style. */
export async function registerPage (app: FastifyInstance, token: string): Promise<void> {
  const [html, script, style] = await Promise.all(
    ['index.html', 'mesh-page.js', 'mesh-page.css'].map((name) => readFile(new URL(name, pageDir), 'utf8'))
  )
  app.get('/', async (_request, reply) => reply
    .header('set-cookie', `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`)
    .type('text/html; charset=utf-8')
    .send(html))
  app.get('/mesh-page.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(script))
  app.get('/mesh-page.css', async (_request, reply) => reply.type('text/css; charset=utf-8').send(style))
}
