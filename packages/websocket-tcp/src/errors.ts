import { defineError } from '@switchyard/core/internal'

/**
 * Configuration errors: a route with `useWebsocket: true` asks for something Envoy's legacy WebSocket
 * mode never supported ("redirects, timeouts, retries, rate limits and shadowing are not supported for
 * WebSocket routes"). Raised while the route is added; `app.ready()` fails with the first.
 */
export const SwyWstcpRedirectError = defineError('SWY_ERR_WSTCP_REDIRECT', 'Route %s sets useWebsocket and %s: redirects are not supported on legacy WebSocket routes', 500)
export const SwyWstcpTimeoutError = defineError('SWY_ERR_WSTCP_TIMEOUT', 'Route %s sets useWebsocket and %s: timeouts are not supported on legacy WebSocket routes (use upstream.idleTimeout)', 500)
export const SwyWstcpRetriesError = defineError('SWY_ERR_WSTCP_RETRIES', 'Route %s sets useWebsocket and %s: retries are not supported on legacy WebSocket routes', 500)
export const SwyWstcpRateLimitError = defineError('SWY_ERR_WSTCP_RATE_LIMIT', 'Route %s sets useWebsocket and %s: rate limits are not supported on legacy WebSocket routes', 500)
export const SwyWstcpMirrorError = defineError('SWY_ERR_WSTCP_MIRROR', 'Route %s sets useWebsocket and %s: shadowing is not supported on legacy WebSocket routes', 500)
export const SwyWstcpNoUpstreamError = defineError('SWY_ERR_WSTCP_NO_UPSTREAM', 'Route %s sets useWebsocket but has no %s: a legacy WebSocket route needs an upstream', 500)
export const SwyWstcpOptionsError = defineError('SWY_ERR_WSTCP_OPTIONS', 'Invalid @switchyard/websocket-tcp option %s: %s', 500)

/** Wire errors: each carries the status sent to the downstream before the pipe opens. */
// Envoy's legacy WsHandlerImpl answered every connection failure with 504 (onConnectionFailure), unlike new style's 503.
export const SwyWstcpConnectError = defineError('SWY_ERR_WSTCP_CONNECT', 'No connection to cluster "%s" endpoint %s: %s', 504)
export const SwyWstcpConnectTimeoutError = defineError('SWY_ERR_WSTCP_CONNECT_TIMEOUT', 'No connection to cluster "%s" endpoint %s within %dms', 504)
export const SwyWstcpBadRequestError = defineError('SWY_ERR_WSTCP_BAD_REQUEST', 'Malformed chunked request body: %s', 400)
export const SwyWstcpBadResponseError = defineError('SWY_ERR_WSTCP_BAD_RESPONSE', 'Upstream of cluster "%s" answered the WebSocket handshake with %s', 502)

/** Every code this package can raise; the README's Errors table is checked against it. */
export const errorCodes = [
  'SWY_ERR_WSTCP_REDIRECT', 'SWY_ERR_WSTCP_TIMEOUT', 'SWY_ERR_WSTCP_RETRIES', 'SWY_ERR_WSTCP_RATE_LIMIT',
  'SWY_ERR_WSTCP_MIRROR', 'SWY_ERR_WSTCP_NO_UPSTREAM', 'SWY_ERR_WSTCP_OPTIONS', 'SWY_ERR_WSTCP_CONNECT', 'SWY_ERR_WSTCP_CONNECT_TIMEOUT',
  'SWY_ERR_WSTCP_BAD_REQUEST', 'SWY_ERR_WSTCP_BAD_RESPONSE'
] as const
