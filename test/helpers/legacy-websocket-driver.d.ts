// Minimal typings for websocket-driver 0.8 (it ships none), as the legacy tests use it: an all-drafts upstream.
declare module 'websocket-driver' {
  import type { IncomingMessage } from 'node:http'
  import type { Duplex, Readable } from 'node:stream'
  interface Driver {
    readonly version: string
    readonly io: Duplex
    readonly messages: Readable
    start (): boolean
    text (message: string): boolean
    close (): boolean
    on (event: 'open' | 'close' | 'error', listener: (...args: unknown[]) => void): void
  }
  const websocketDriver: {
    http (request: IncomingMessage, options?: { allowDrafts?: boolean, protocols?: string[] }): Driver
    isWebSocket (request: IncomingMessage): boolean
  }
  export default websocketDriver
}
