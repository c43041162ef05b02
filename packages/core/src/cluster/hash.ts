// The hash of ring hash, maglev and the route hash policy: MurmurHash3 (x86, 32-bit) over UTF-8.
// Envoy uses xxHash64; any well-mixed hash serves, and this one is fast with 32-bit integer maths.

const encoder = new TextEncoder()
const scratch = new Uint8Array(1024)

/** MurmurHash3 x86_32 of the UTF-8 bytes of `key`: an unsigned 32-bit integer. */
export function hash32 (key: string, seed = 0): number {
  // Worst case 3 bytes per UTF-16 unit: short keys are encoded without allocating.
  if (key.length * 3 <= scratch.length) return murmur3(scratch, encoder.encodeInto(key, scratch).written, seed)
  const bytes = encoder.encode(key)
  return murmur3(bytes, bytes.length, seed)
}

/** 16 hex digits from two seeds: the value of a generated sticky cookie (Envoy writes xxHash64 in hex). */
export function hex64 (key: string): string {
  return hash32(key, 0x5eed).toString(16).padStart(8, '0') + hash32(key, 0xcafe).toString(16).padStart(8, '0')
}

function murmur3 (b: Uint8Array, len: number, seed: number): number {
  let h = seed | 0
  const blocks = len & ~3
  for (let i = 0; i < blocks; i += 4) {
    let k = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  const tail = len & 3
  if (tail > 0) {
    let k = 0
    if (tail === 3) k ^= b[blocks + 2]! << 16
    if (tail >= 2) k ^= b[blocks + 1]! << 8
    k ^= b[blocks]!
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
  }
  h ^= len
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
