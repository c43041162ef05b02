/**
 * Reads a packed `.tgz` (gzip + ustar, as npm and pnpm write it) without a `tar` binary: a map from each
 * entry's path, `package/` prefix removed, to its bytes.
 */
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'

function field (block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length)
  const end = raw.indexOf(0)
  return raw.toString('utf8', 0, end === -1 ? length : end)
}

/** Every regular file in the tarball. */
export function readTarball (file: string): Map<string, Buffer> {
  const data = gunzipSync(readFileSync(file))
  const files = new Map<string, Buffer>()
  let offset = 0
  let longName: string | undefined
  while (offset + 512 <= data.length) {
    const header = data.subarray(offset, offset + 512)
    if (header.every((b) => b === 0)) break
    const size = parseInt(field(header, 124, 12).trim() || '0', 8)
    const type = String.fromCharCode(header[156] ?? 0x30)
    const prefix = field(header, 345, 155)
    const body = data.subarray(offset + 512, offset + 512 + size)
    offset += 512 + Math.ceil(size / 512) * 512
    if (type === 'L') { longName = field(body, 0, body.length); continue }
    if (type === 'x' || type === 'g') continue
    const name = longName ?? (prefix !== '' ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100))
    longName = undefined
    if (type === '0' || type === '\0') files.set(name.replace(/^[^/]+\//, ''), Buffer.from(body))
  }
  return files
}
