// Slots: at most `limit` async tasks running at once, the rest waiting in order (reads, requests).

/** At most `limit` tasks running at once; the rest wait in order. */
export class Slots {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!(Number.isInteger(limit) && limit >= 1))
      throw new RangeError(`a concurrency limit must be an integer ≥ 1, got ${limit}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((go) => this.queue.push(go));
    else this.active++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter (active stays), or is freed.
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }
}
