import type { ResponseHead } from '@switchyard/core/internal'

/**
 * The response head relayed to the client when the upstream refused the upgrade: the status line and
 * header lines as sent, except `Connection`/`Keep-Alive`, replaced by `Connection: close` — the
 * connection ends after this response, and nothing the client sends next is read.
 */
export function closingHead (head: ResponseHead): string {
  let out = `${head.statusLine}\r\n`
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    const key = head.rawHeaders[i]!.toLowerCase()
    if (key === 'connection' || key === 'keep-alive') continue
    out += `${head.rawHeaders[i]!}: ${head.rawHeaders[i + 1]!}\r\n`
  }
  return `${out}Connection: close\r\n\r\n`
}
