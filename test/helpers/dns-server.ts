/**
 * An authoritative DNS server on 127.0.0.1 (UDP) whose zone a test edits while it runs, for `strictDns`
 * clusters (`dnsResolvers: [server.address]`). A name missing from the zone is NXDOMAIN.
 */
import dgram from 'node:dgram'
import { once } from 'node:events'
import type { TestContext } from 'node:test'
import dnsPacket from 'dns-packet'

export type Zone = Record<string, { a?: string[], aaaa?: string[] }>

export interface DnsServer {
  /** `127.0.0.1:<port>`, for `dnsResolvers`. */
  address: string
  zone: Zone
  /** `A chat.test`, `AAAA chat.test`, … in order. */
  queries: string[]
}

export async function startDnsServer (t: TestContext, zone: Zone = {}): Promise<DnsServer> {
  const socket = dgram.createSocket('udp4')
  const server: DnsServer = { address: '', zone, queries: [] }
  socket.on('message', (msg, peer) => {
    const query = dnsPacket.decode(msg)
    const question = query.questions?.[0]
    if (question === undefined) return
    server.queries.push(`${question.type} ${question.name}`)
    const entry = server.zone[question.name]
    const records = entry === undefined ? [] : (question.type === 'A' ? entry.a : question.type === 'AAAA' ? entry.aaaa : undefined) ?? []
    const answer = dnsPacket.encode({
      type: 'response',
      id: query.id,
      // RCODE 3 (NXDOMAIN) for a name the zone does not hold.
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (entry === undefined ? 3 : 0),
      questions: query.questions,
      answers: records.map((data) => ({ type: question.type as 'A', name: question.name, ttl: 1, class: 'IN' as const, data }))
    })
    socket.send(answer, peer.port, peer.address)
  })
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  t.after(() => new Promise<void>((resolve) => { socket.close(() => resolve()) }))
  server.address = `127.0.0.1:${socket.address().port}`
  return server
}
