import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AppAction } from './app-instances.ts'

/**
 * `POST /mesh/apps/:name/kill` and `POST /mesh/apps/:name/restart`: the page's buttons (and the printed
 * `curl` lines) that crash an app instance and bring it back, behind the mesh token. 200 once done, 404
 * for a name that is not an instance.
 */
export function registerAppControls (
  app: FastifyInstance,
  onRequest: (request: FastifyRequest, reply: FastifyReply) => Promise<void>,
  control: (action: AppAction, name: string) => Promise<boolean>
): void {
  app.post<{ Params: { name: string, action: string } }>('/mesh/apps/:name/:action', { onRequest }, async (request, reply) => {
    const { name, action } = request.params
    if (action !== 'kill' && action !== 'restart') return await reply.code(404).send({ error: `no action ${action}` })
    if (!await control(action, name)) return await reply.code(404).send({ error: `no app instance ${name}` })
    return { [action === 'kill' ? 'killed' : 'restarted']: name }
  })
}
