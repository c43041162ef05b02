import http from 'node:http'
import https from 'node:https'
import http2 from 'node:http2'
import net from 'node:net'
import type { Endpoint } from './endpoint.js'

export interface ProbeSpec {
  /** Connect-only when true; otherwise `GET path`. */
  tcp: boolean
  path: string
  timeout: number
  /** Inclusive status ranges that pass. */
  expectedStatuses: ReadonlyArray<readonly [number, number]>
  protocol: 'http1' | 'http2'
  tls: Record<string, unknown> | undefined
}

export interface ProbeResult {
  ok: boolean
  /** The failure was the network's (refused, reset, timeout, an answer that is not HTTP), not a status. */
  network: boolean
  reason: string
}

export interface Probe {
  readonly result: Promise<ProbeResult>
  /** Ends the probe now and frees its socket; `result` settles as a failure if it had not. */
  abort (): void
}

const userAgent = 'switchyard'

/**
 * One health check of one endpoint (Envoy's active health check session, one round). Every way it ends
 * (answer, timeout, refusal, reset, garbage, abort) destroys its socket and clears its timer: a check
 * never outlives its `timeout`.
 */
export function probe (endpoint: Endpoint, spec: ProbeSpec): Probe {
  let settle!: (result: ProbeResult) => void
  const result = new Promise<ProbeResult>((resolve) => { settle = resolve })
  let done = false
  let cleanup: () => void = () => {}
  const finish = (r: ProbeResult): void => {
    if (done) return
    done = true
    clearTimeout(timer)
    cleanup()
    settle(r)
  }
  const timer = setTimeout(() => finish({ ok: false, network: true, reason: `no answer within ${spec.timeout}ms` }), spec.timeout)
  timer.unref()
  const judge = (status: number): ProbeResult => spec.expectedStatuses.some(([lo, hi]) => status >= lo && status <= hi)
    ? { ok: true, network: false, reason: `status ${status}` }
    : { ok: false, network: false, reason: `unexpected status ${status}` }
  const networkFailure = (err: Error): void => finish({ ok: false, network: true, reason: err.message })

  if (spec.tcp) cleanup = tcpProbe(endpoint, () => finish({ ok: true, network: false, reason: 'connected' }), networkFailure)
  else if (spec.protocol === 'http2') cleanup = http2Probe(endpoint, spec, (status) => finish(judge(status)), networkFailure)
  else cleanup = http1Probe(endpoint, spec, (status) => finish(judge(status)), networkFailure)
  return { result, abort: () => finish({ ok: false, network: true, reason: 'aborted' }) }
}

function tlsOptions (endpoint: Endpoint, tls: Record<string, unknown> | undefined): Record<string, unknown> {
  const servername = endpoint.hostname ?? (net.isIP(endpoint.host) === 0 ? endpoint.host : undefined)
  return { ...tls, ...(servername === undefined ? {} : { servername }) }
}

function tcpProbe (endpoint: Endpoint, onOk: () => void, onError: (err: Error) => void): () => void {
  const socket = net.connect({ host: endpoint.host, port: endpoint.port })
  const onClose = (): void => onError(new Error('closed before connecting'))
  socket.once('connect', onOk)
  socket.once('error', onError)
  socket.once('close', onClose)
  // Only the probe's own listeners go: a socket's 'close' is also watched from outside (diagnostics
  // channel subscribers, APM agents), and they must still see it.
  return () => {
    socket.off('connect', onOk)
    socket.off('close', onClose)
    socket.on('error', noop)
    socket.destroy()
  }
}

function http1Probe (endpoint: Endpoint, spec: ProbeSpec, onStatus: (status: number) => void, onError: (err: Error) => void): () => void {
  const options: http.RequestOptions = {
    host: endpoint.host,
    port: endpoint.port,
    method: 'GET',
    path: spec.path,
    agent: false,
    headers: { host: endpoint.authority, 'user-agent': userAgent, connection: 'close' },
    ...(endpoint.secure ? tlsOptions(endpoint, spec.tls) : {})
  }
  const req = (endpoint.secure ? https : http).request(options)
  req.once('response', (res) => {
    // Judged once the whole answer has arrived (Envoy decides on the end of the response).
    res.once('end', () => onStatus(res.statusCode ?? 0))
    res.once('error', onError)
    res.once('aborted', () => onError(new Error('answer cut short')))
    res.resume()
  })
  req.once('error', onError)
  req.once('close', () => onError(new Error('closed before an answer')))
  req.end()
  return () => {
    req.on('error', () => {})
    req.destroy()
  }
}

function http2Probe (endpoint: Endpoint, spec: ProbeSpec, onStatus: (status: number) => void, onError: (err: Error) => void): () => void {
  const session = http2.connect(endpoint.origin, endpoint.secure ? { ALPNProtocols: ['h2'], ...tlsOptions(endpoint, spec.tls) } : {})
  const onSessionClose = (): void => onError(new Error('session closed before an answer'))
  session.once('error', onError)
  session.once('close', onSessionClose)
  const stream = session.request({ ':method': 'GET', ':path': spec.path, ':authority': endpoint.authority, 'user-agent': userAgent }, { endStream: true })
  let status = 0
  const onEnd = (): void => onStatus(status)
  const onStreamClose = (): void => onError(new Error(`stream closed (code ${stream.rstCode ?? 0}) before an answer`))
  stream.once('response', (headers) => { status = Number(headers[':status'] ?? 0) })
  stream.once('end', onEnd)
  stream.once('error', onError)
  stream.once('close', onStreamClose)
  stream.resume()
  return () => {
    stream.off('end', onEnd)
    stream.off('close', onStreamClose)
    session.off('close', onSessionClose)
    stream.on('error', noop)
    session.on('error', noop)
    stream.destroy()
    session.destroy()
  }
}

function noop (): void {}
