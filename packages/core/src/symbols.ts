/** Private state of @switchyard/core, kept under symbols (fastify `lib/symbols.js` style). */
export const kUpgrade = Symbol('switchyard.upgrade')
export const kRouteState = Symbol('switchyard.routeState')
export const kEngine = Symbol('switchyard.plainEngine')
/** Shared with companion packages (websocket-tcp, h2-connect), which reach the core through it. */
export const kSwitchyard = Symbol.for('switchyard.core')
