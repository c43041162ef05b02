import { defineError } from '@switchyard/core/internal'

/** Configuration errors: raised while the plugin is registered; they fail `app.ready()`. */
export const SwyH2OptionsError = defineError('SWY_ERR_H2_OPTIONS', 'Invalid @switchyard/h2-connect option %s: %s', 500)

/** Wire errors: each carries the status sent to the downstream. */
export const SwyH2ConnectProtocolDisabledError = defineError(
  'SWY_ERR_H2_CONNECT_PROTOCOL_DISABLED',
  'Upstream of cluster "%s" endpoint %s does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL: no extended CONNECT sent',
  502
)
export const SwyH2SessionError = defineError('SWY_ERR_H2_SESSION', 'No usable HTTP/2 session to cluster "%s" endpoint %s: %s', 503)
export const SwyH2WebsocketAcceptError = defineError(
  'SWY_ERR_H2_WEBSOCKET_ACCEPT',
  'Upstream of cluster "%s" answered the generated Sec-WebSocket-Key with %s Sec-WebSocket-Accept',
  502
)
export const SwyH2PlainConnectError = defineError('SWY_ERR_H2_PLAIN_CONNECT', 'Plain CONNECT to %s refused: no enabled "CONNECT" upgrade config', 403)

/** Every code this package can raise; the README's Errors table is checked against it. */
export const errorCodes = [
  'SWY_ERR_H2_OPTIONS', 'SWY_ERR_H2_CONNECT_PROTOCOL_DISABLED', 'SWY_ERR_H2_SESSION', 'SWY_ERR_H2_WEBSOCKET_ACCEPT',
  'SWY_ERR_H2_PLAIN_CONNECT'
] as const
