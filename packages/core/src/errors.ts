import { defineError } from './define-error.js'

/** Configuration errors: raised while the plugin or a route is registered; they fail `app.ready()`. */
export const SwyPluginOptionsError = defineError('SWY_ERR_PLUGIN_OPTIONS', 'Invalid @switchyard/core option %s: %s', 500)
export const SwyRouteOptionsError = defineError('SWY_ERR_ROUTE_OPTIONS', 'Invalid route option on %s: %s: %s', 500)
export const SwyDuplicateUpgradeTypeError = defineError('SWY_ERR_DUPLICATE_UPGRADE_TYPE', 'Duplicate upgrade type "%s" in %s', 500)
export const SwyUnknownClusterError = defineError('SWY_ERR_UNKNOWN_CLUSTER', 'Route %s names unknown cluster "%s" in %s', 500)
export const SwyWebsocketTcpMissingError = defineError('SWY_ERR_WEBSOCKET_TCP_MISSING', 'Route %s sets useWebsocket but @switchyard/websocket-tcp is not registered', 500)

/** Wire errors: each carries the status sent to the downstream (ws `Receiver#createError` style). */
export const SwyUpgradeNotAllowedError = defineError('SWY_ERR_UPGRADE_NOT_ALLOWED', 'Upgrade type "%s" is not enabled on route %s', 403)
export const SwyUpstreamConnectError = defineError('SWY_ERR_UPSTREAM_CONNECT', 'Could not connect to cluster "%s" endpoint %s: %s', 503)
export const SwyNoHealthyUpstreamError = defineError('SWY_ERR_NO_HEALTHY_UPSTREAM', 'Cluster "%s" has no endpoint to send to', 503)
export const SwyUpstreamTimeoutError = defineError('SWY_ERR_UPSTREAM_TIMEOUT', 'Upstream of cluster "%s" did not answer within %dms', 504)
export const SwyUpstreamProtocolError = defineError('SWY_ERR_UPSTREAM_PROTOCOL', 'Upstream of cluster "%s" answered badly: %s', 502)
export const SwyFilterError = defineError('SWY_ERR_FILTER', 'Filter "%s" failed: %s', 500)
export const SwyShuttingDownError = defineError('SWY_ERR_SHUTTING_DOWN', 'The server is shutting down', 503)
/** Headers on their way to the wire failed `checkHeaders` (a filter's mutation, usually): answered 500, or reset. */
export const SwyInvalidHeaderError = defineError('SWY_ERR_INVALID_HEADER', 'Invalid header %s on the way to the %s: %s', 500)
export const SwyUpstreamOverflowError = defineError('SWY_ERR_UPSTREAM_OVERFLOW', 'Cluster "%s" is over its %s circuit breaker', 503)
/** A Host, `:authority` or absolute-form authority that is not one: 400 on HTTP/1.x, RST_STREAM PROTOCOL_ERROR on HTTP/2. */
export const SwyInvalidAuthorityError = defineError('SWY_ERR_INVALID_AUTHORITY', 'Invalid request authority %s: %s', 400)
/** Envoy's `stream_idle_timeout`: 408 before the response head, a reset after. */
export const SwyStreamIdleTimeoutError = defineError('SWY_ERR_STREAM_IDLE_TIMEOUT', 'No byte either way for %dms (streamIdleTimeout)', 408)
/** Envoy's `request_timeout`: 408 before the response head, a reset after. */
export const SwyRequestTimeoutError = defineError('SWY_ERR_REQUEST_TIMEOUT', 'The request was not received within %dms (requestTimeout)', 408)
/** A CONNECT whose target is not `host:port` (RFC 9110 §9.3.6). */
export const SwyConnectTargetError = defineError('SWY_ERR_CONNECT_TARGET', 'CONNECT target "%s" is not host:port: %s', 400)
/** A CONNECT that announces content (RFC 9110 §9.3.6: a CONNECT request has none). */
export const SwyConnectBodyError = defineError('SWY_ERR_CONNECT_BODY', 'CONNECT to "%s" announces content (%s): a CONNECT has none', 400)

/** Companion plugins register with core through its API; a clash or a bad registration fails `app.ready()`. */
export const SwyCompanionError = defineError('SWY_ERR_COMPANION', 'Plugin %s cannot register with @switchyard/core: %s', 500)

/** Cluster manager: options the schema cannot check, runtime endpoint updates, and what hosts do to streams. */
export const SwyClusterOptionsError = defineError('SWY_ERR_CLUSTER_OPTIONS', 'Invalid option of cluster "%s": %s: %s', 500)
/** A warning (logged once per cluster, never thrown): a hashing cluster behind a route with no hash policy. */
export const SwyHashPolicyMissingError = defineError('SWY_ERR_HASH_POLICY_MISSING', 'Cluster "%s" uses %s but route %s has no upstream.hashPolicy: each request gets a random endpoint', 500)
export const SwyUpstreamHostUnhealthyError = defineError('SWY_ERR_UPSTREAM_HOST_UNHEALTHY', 'Endpoint %s of cluster "%s" turned %s: its open streams are closed', 503)
export const SwyUpstreamHostRemovedError = defineError('SWY_ERR_UPSTREAM_HOST_REMOVED', 'Endpoint %s was removed from cluster "%s" and its streams did not end within drainTimeout (%dms)', 503)

/** Every code this package can raise; the README's Errors table is checked against it. */
export const errorCodes = [
  'SWY_ERR_PLUGIN_OPTIONS', 'SWY_ERR_ROUTE_OPTIONS', 'SWY_ERR_DUPLICATE_UPGRADE_TYPE', 'SWY_ERR_UNKNOWN_CLUSTER',
  'SWY_ERR_WEBSOCKET_TCP_MISSING', 'SWY_ERR_UPGRADE_NOT_ALLOWED', 'SWY_ERR_UPSTREAM_CONNECT',
  'SWY_ERR_NO_HEALTHY_UPSTREAM', 'SWY_ERR_UPSTREAM_TIMEOUT', 'SWY_ERR_UPSTREAM_PROTOCOL', 'SWY_ERR_FILTER',
  'SWY_ERR_SHUTTING_DOWN', 'SWY_ERR_UPSTREAM_OVERFLOW', 'SWY_ERR_COMPANION', 'SWY_ERR_CLUSTER_OPTIONS',
  'SWY_ERR_HASH_POLICY_MISSING', 'SWY_ERR_UPSTREAM_HOST_UNHEALTHY', 'SWY_ERR_UPSTREAM_HOST_REMOVED',
  'SWY_ERR_INVALID_HEADER', 'SWY_ERR_INVALID_AUTHORITY', 'SWY_ERR_STREAM_IDLE_TIMEOUT', 'SWY_ERR_REQUEST_TIMEOUT',
  'SWY_ERR_CONNECT_TARGET', 'SWY_ERR_CONNECT_BODY'
] as const
