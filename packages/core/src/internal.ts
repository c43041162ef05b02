/**
 * `@switchyard/core/internal`: the API companion packages (@switchyard/websocket-tcp,
 * @switchyard/h2-connect) build on — one implementation of the router, cluster choice, rewrites, the
 * tunnel, refusals and header plumbing, shared rather than written again. Not for applications: it may
 * change in any minor release.
 */
export { AppState, appStateOf, type UpgradeModeHandler, type UpgradeModeName } from './app-state.js'
export type { RouteState } from './route-state.js'
export { Router, hashInputOf, type Attempt, type AttemptEvents, type AttemptFailureKind, type RouterFailure, type RouterFailureKind, type RouterOwner } from './router/router.js'
export { RetryPolicy, routeTimeout, DEFAULT_ROUTE_TIMEOUT } from './router/retry-policy.js'
export { chooseCluster, rewritePath, rewriteHost, clustersOf } from './route-action.js'
export { Cluster, type ChooseContext, type EndpointStatus } from './cluster/cluster.js'
export { Host, type Closable, type HostHealth } from './cluster/host.js'
export { CircuitBreakers } from './cluster/circuit-breakers.js'
export { parseEndpoint, type Endpoint } from './cluster/endpoint.js'
export { compileHashPolicy, type HashFunction, type HashInput, type HashResult } from './cluster/hash-policy.js'
export { Tunnel, streamSink, resetStream, type TunnelSink, type TunnelOptions, type TunnelCloseReason } from './tunnel.js'
export { Http1Downstream, closeSoon, type Downstream, type UpgradeContext } from './downstream.js'
export { connectEndpoint, type EndpointConnection } from './transport/connect.js'
export type { UpgradeTransport, UpgradeRequest, UpgradeEvents, PendingUpgrade } from './transport/transport.js'
export {
  headersFromRaw, headerTokens, upgradeTypeOf, serializeHeaders, addForwardingHeaders, sanitizeUpgradeRequestHeaders,
  firstValue, connectionSpecificHeaders, upgradeHopByHop, hopByHopRequest, hopByHopResponse, type Headers
} from './headers.js'
export { writeRefusal, lingerThenDestroy } from './refusal.js'
export { authorityProblem, http2AuthorityProblem, normaliseHttp1Target, INVALID_AUTHORITY_STAT, MAX_AUTHORITY_LENGTH } from './request-target.js'
export { invalidAuthority } from './request-gate.js'
export { StreamTimeouts, timeoutBody, type TimeoutReplier } from './stream-timeouts.js'
export { parseResponseHead, bodyFraming, MAX_RESPONSE_HEAD, type ResponseHead, type BodyFraming } from './http1/response-head.js'
export { ChunkedScanner } from './http1/chunked.js'
export { upgradeStartChannel, tunnelCloseChannel, h2ConnectChannel } from './diagnostics.js'
export { compileCheck, type SchemaProblem } from './schema-check.js'
export { resolveUpgrade } from './route-handler.js'
export { isFastifyWebsocketListener } from './upgrade-dispatch.js'
export { Stats, declareGauges, type StatRecord, type StatKind } from './stats.js'
export { toPrometheus } from './prometheus.js'
export { Runtime } from './runtime.js'
export { kSwitchyard } from './symbols.js'
export { defineError, type SwyErrorConstructor } from './define-error.js'
export { parseConnectTarget, type ConnectTarget } from './connect-target.js'
