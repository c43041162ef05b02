/** A live stream that `app.close()` can end. */
export interface Closable {
  destroy (error?: Error): void
  /** Ends it gracefully at the end of the grace period (a WebSocket's close frames), else it is destroyed. */
  goAway? (error: Error): void
}

/** Every live upgrade stream, so `app.close()` can wait for them to drain and then close the rest. */
export class ActiveStreams extends Set<Closable> {
  #waiters: Array<() => void> = []

  override delete (stream: Closable): boolean {
    const had = super.delete(stream)
    if (had && this.size === 0) for (const fn of this.#waiters.splice(0)) fn()
    return had
  }

  /** Resolves when no stream is left, or after `ms`. */
  drained (ms: number): Promise<void> {
    if (this.size === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.#waiters.push(() => { clearTimeout(timer); resolve() })
    })
  }
}
