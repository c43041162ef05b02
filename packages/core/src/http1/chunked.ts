const LF = 0x0a
const CR = 0x0d

/**
 * An HTTP/1.1 chunked body (RFC 9112 §7.1: chunks, a last chunk `0`, trailer lines, CRLF), read
 * incrementally across reads split anywhere. `push` hands each run of payload bytes to `onData` (when
 * given: a decoder) and returns the index in `chunk` just after the end of the body, or -1 when more is
 * needed. Throws on a malformed chunk size or a line not ended by CRLF: a bare LF is refused, since two
 * parsers that disagree on line ends are a request smuggling vector.
 */
export class ChunkedScanner {
  #state: 'size' | 'sizeLF' | 'data' | 'dataCR' | 'dataLF' | 'trailer' | 'trailerLF' | 'done' = 'size'
  #line = ''
  #remaining = 0
  #trailerLine = 0

  push (chunk: Buffer, onData?: (payload: Buffer) => void): number {
    let i = 0
    while (i < chunk.length) {
      switch (this.#state) {
        case 'size': {
          const byte = chunk[i++]!
          if (byte === LF) throw new Error('a chunk size line ended by a bare LF')
          if (byte !== CR) {
            if (this.#line.length > 1024) throw new Error('a chunk size line over 1024 bytes')
            this.#line += String.fromCharCode(byte)
            break
          }
          this.#state = 'sizeLF'
          break
        }
        case 'sizeLF': {
          if (chunk[i++] !== LF) throw new Error('a chunk size line with a CR not followed by LF')
          const hex = this.#line.split(';')[0]!.trim()
          this.#line = ''
          if (!/^[0-9a-fA-F]{1,15}$/.test(hex)) throw new Error(`a malformed chunk size: ${JSON.stringify(hex.slice(0, 32))}`)
          this.#remaining = parseInt(hex, 16)
          if (this.#remaining === 0) {
            this.#state = 'trailer'
            this.#trailerLine = 0
          } else {
            this.#state = 'data'
          }
          break
        }
        case 'data': {
          const take = Math.min(this.#remaining, chunk.length - i)
          if (onData !== undefined && take > 0) onData(chunk.subarray(i, i + take))
          i += take
          this.#remaining -= take
          if (this.#remaining === 0) this.#state = 'dataCR'
          break
        }
        case 'dataCR':
          if (chunk[i++] !== CR) throw new Error('chunk data not followed by CRLF')
          this.#state = 'dataLF'
          break
        case 'dataLF':
          if (chunk[i++] !== LF) throw new Error('chunk data not followed by CRLF')
          this.#state = 'size'
          break
        case 'trailer': {
          const byte = chunk[i++]!
          if (byte === LF) throw new Error('a trailer line ended by a bare LF')
          if (byte === CR) this.#state = 'trailerLF'
          else this.#trailerLine++
          break
        }
        case 'trailerLF': {
          if (chunk[i++] !== LF) throw new Error('a trailer line with a CR not followed by LF')
          if (this.#trailerLine === 0) {
            this.#state = 'done'
            return i
          }
          this.#trailerLine = 0
          this.#state = 'trailer'
          break
        }
        case 'done':
          return i
      }
    }
    return this.#state === 'done' ? i : -1
  }
}
