export { createHeaderMutationFilter, type HeaderMutationOptions, type HeaderMutations } from './header-mutation-filter.js'
export { createAuthorizationFilter, type AuthorizationOptions, type AuthorizationDecision } from './authorization-filter.js'
export {
  createWebSocketFrameLimitFilter, websocketMessagesKey, type WebSocketFrameLimitOptions, type WebSocketMessageCounts
} from './websocket-frame-limit-filter.js'
export { FrameReader, CloseCode, type FrameReaderOptions } from './websocket-frame-reader.js'
export { closeFrame } from './websocket-close-frame.js'
export { createAccessLogFilter, type AccessLogOptions, type AccessLogLine, type AccessLogger, type ClosedBy } from './access-log-filter.js'
export { createBufferFilter, type BufferOptions } from './buffer-filter.js'
export * as errors from './errors.js'
