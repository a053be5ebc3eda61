/**
 * The byte limit on reading pages ahead of a planned step: how many bytes of pages are held for
 * steps not built yet (`index.prefetch_bytes`). Like the reads in flight (`index.read_concurrency`,
 * util/slots.ts), it hands out its room first come, first served, so a step waiting for room is
 * never overtaken by later ones.
 */

/**
 * Bytes held for planned steps, at most `limit`: a reservation waits until it fits. One larger
 * than the whole limit is granted when nothing else is held, so a step whose pages exceed the
 * limit still runs, alone, instead of waiting forever.
 */
export class ByteBudget {
  private used = 0;
  private readonly queue: { bytes: number; go: () => void }[] = [];

  constructor(readonly limit: number) {
    if (!(Number.isInteger(limit) && limit >= 1))
      throw new RangeError(`prefetch bytes must be an integer ≥ 1, got ${limit}`);
  }

  /** Bytes held now. */
  get held(): number {
    return this.used;
  }

  /** Bytes that fit now without waiting. */
  get room(): number {
    return Math.max(0, this.limit - this.used);
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit;
  }

  /** Resolves once `bytes` are reserved (give them back with `release`). */
  async reserve(bytes: number): Promise<void> {
    if (this.queue.length === 0 && this.fits(bytes)) {
      this.used += bytes;
      return;
    }
    await new Promise<void>((go) => this.queue.push({ bytes, go }));
  }

  /** Counts `bytes` as held without waiting (pages already in memory that a step pins). */
  take(bytes: number): void {
    this.used += bytes;
  }

  release(bytes: number): void {
    this.used -= bytes;
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
      const w = this.queue.shift()!;
      this.used += w.bytes;
      w.go();
    }
  }
}
