/** Private state of @switchyard/core, kept under symbols (fastify `lib/symbols.js` style). */
export const kUpgrade = Symbol('switchyard.upgrade')
export const kRouteState = Symbol('switchyard.routeState')
/** Where the app's state hangs on a Fastify instance; companions reach it through `appStateOf`. */
export const kSwitchyard = Symbol.for('switchyard.core')
