/**
 * `@switchyard/core/internal`: the API companion packages (@switchyard/websocket-tcp,
 * @switchyard/h2-connect, @switchyard/filters) build on. Not for applications: it may change in any
 * minor release.
 */
export { defineError, type SwyErrorConstructor } from './define-error.js'
