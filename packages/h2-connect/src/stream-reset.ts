import { constants, type Http2Stream } from 'node:http2'

/**
 * Makes an HTTP/2 stream report a reset the way core's tunnel understands one (RST_STREAM ⇄ socket
 * destroy). Two Node quirks stand in the way:
 * - a peer's RST_STREAM first ends the readable side (`'end'`, which the tunnel carries as a FIN), and
 *   only then closes the stream: `'end'` is delayed by one turn of the event loop and dropped when the
 *   stream turns out to be reset, so the far side is reset rather than half-closed;
 * - a reset with CANCEL (or the loss of the connection) closes the stream without an `'error'`: an
 *   abort by an RST_STREAM other than NO_ERROR is reported as `ERR_HTTP2_STREAM_ERROR`.
 * Core could do both in its tunnel instead (see the package README, "Core notes").
 */
export function reportResetAsError (stream: Http2Stream): void {
  stream.on('error', noop)
  const emit = stream.emit
  stream.emit = function (this: Http2Stream, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'end') return emit.call(this, event, ...args)
    setImmediate(() => {
      if (!wasReset(stream)) emit.call(stream, 'end')
    })
    return true
  } as Http2Stream['emit']
  stream.once('aborted', () => {
    if (!wasReset(stream) || stream.errored !== null) return
    emit.call(stream, 'error', Object.assign(new Error(`HTTP/2 stream reset (code ${stream.rstCode})`), {
      code: 'ERR_HTTP2_STREAM_ERROR', rstCode: stream.rstCode
    }))
  })
}

function wasReset (stream: Http2Stream): boolean {
  const code = stream.rstCode
  return code !== undefined && code !== constants.NGHTTP2_NO_ERROR
}

function noop (): void {}
