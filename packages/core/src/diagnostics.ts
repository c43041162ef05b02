import diagnostics from 'node:diagnostics_channel'

/**
 * The `diagnostics_channel` channels of Switchyard (undici `lib/core/diagnostics.js` style), declared
 * once here and published by core and its companions.
 */

/** An upgrade starts: `{ upgradeType, method, url, route, legacy? }`. */
export const upgradeStartChannel = diagnostics.channel('switchyard:upgrade:start')
/** A tunnel (or an upgrade that never became one) ends: `{ upgradeType, bytesFromDownstream, bytesFromUpstream, reason, error, legacy? }`. */
export const tunnelCloseChannel = diagnostics.channel('switchyard:tunnel:close')
/** An HTTP/2 CONNECT stream arrives at an h2-connect listener: `{ protocol, authority, path, method }`. */
export const h2ConnectChannel = diagnostics.channel('switchyard:h2:connect')
