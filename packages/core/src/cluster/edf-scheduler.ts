/**
 * Earliest-deadline-first schedule (Envoy's EdfScheduler): each entry is due every 1/weight; a pick takes
 * the earliest deadline and re-adds the entry one period later, with its weight read again at that moment
 * (least request lowers a busy host's weight that way). O(log n) per pick, smooth interleaving:
 * weights 1 and 3 give B B A B B B A B …, never A A A then B.
 */
export class EdfScheduler<T> {
  // Parallel arrays of a binary min-heap ordered by (deadline, insertion order).
  #deadline: number[] = []
  #order: number[] = []
  #item: T[] = []
  #now = 0
  #seq = 0

  get size (): number {
    return this.#item.length
  }

  add (item: T, weight: number): void {
    this.#push(this.#now + 1 / weight, item)
  }

  /** The item due first, re-added with `weightOf(item)`. */
  pickAndAdd (weightOf: (item: T) => number): T | undefined {
    if (this.#item.length === 0) return undefined
    const item = this.#item[0]!
    this.#now = this.#deadline[0]!
    this.#pop()
    this.#push(this.#now + 1 / Math.max(weightOf(item), Number.MIN_VALUE), item)
    return item
  }

  /** The item due first, left in place. */
  peek (): T | undefined {
    return this.#item[0]
  }

  #less (a: number, b: number): boolean {
    const da = this.#deadline[a]!
    const db = this.#deadline[b]!
    return da < db || (da === db && this.#order[a]! < this.#order[b]!)
  }

  #swap (a: number, b: number): void {
    const d = this.#deadline[a]!; this.#deadline[a] = this.#deadline[b]!; this.#deadline[b] = d
    const o = this.#order[a]!; this.#order[a] = this.#order[b]!; this.#order[b] = o
    const t = this.#item[a]!; this.#item[a] = this.#item[b]!; this.#item[b] = t
  }

  #push (deadline: number, item: T): void {
    this.#deadline.push(deadline)
    this.#order.push(this.#seq++)
    this.#item.push(item)
    let i = this.#item.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.#less(i, parent)) break
      this.#swap(i, parent)
      i = parent
    }
  }

  #pop (): void {
    const last = this.#item.length - 1
    this.#swap(0, last)
    this.#deadline.pop()
    this.#order.pop()
    this.#item.pop()
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < last && this.#less(l, m)) m = l
      if (r < last && this.#less(r, m)) m = r
      if (m === i) break
      this.#swap(i, m)
      i = m
    }
  }
}
