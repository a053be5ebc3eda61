/**
 * Bytes of batches built but not yet handed to the socket, for the whole server. grpc-js queues
 * written messages without bound (object-mode write() returns false only after 16), so a client
 * that stops reading would hold 16 built batches (256 idle streams: 11.7 GB). Each stream
 * bounds its own queue (StreamPump) and its build-ahead (a build worker's, remote-stream.ts); this
 * bounds their sum: beyond its first unsent batch, a stream builds another only while the budget
 * has room, so unsent bytes stay within the budget plus one batch per open stream (and a stream
 * that reads is never starved by idle ones).
 */
export class SendBudget {
  readonly maxBytes: number;
  private used = 0;
  private readonly waiting = new Set<() => void>();

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.used;
  }

  get hasRoom(): boolean {
    return this.used < this.maxBytes;
  }

  /** One stream's account in this budget (one per call). */
  account(): StreamBytes {
    return new StreamBytes(this);
  }

  take(n: number): void {
    this.used += n;
  }

  /** Returns bytes (sent, or dropped with their stream) and wakes the streams waiting for room. */
  give(n: number): void {
    this.used -= n;
    for (const wake of [...this.waiting]) wake();
  }

  /** Calls `wake` whenever bytes are given back, until the returned function is called. */
  onRoom(wake: () => void): () => void {
    this.waiting.add(wake);
    return () => this.waiting.delete(wake);
  }
}

/**
 * What one stream holds of the budget: every batch built for it and not yet handed to the
 * socket, wherever it waits (in the pump's writes, or built ahead by a build worker). Whoever
 * builds a batch charges it (`take`); it is given back once written out (`give`), dropped
 * (`give`: a rewind), or with everything else when the call ends (`close`, once, after which
 * nothing is charged).
 */
export class StreamBytes {
  private readonly budget: SendBudget;
  private count = 0;
  private held = 0;
  private closed = false;

  constructor(budget: SendBudget) {
    this.budget = budget;
  }

  get messages(): number {
    return this.count;
  }

  get bytes(): number {
    return this.held;
  }

  /** Another batch may be built: the stream holds none (it is never starved), or the budget has room. */
  get mayBuild(): boolean {
    return this.count === 0 || this.budget.hasRoom;
  }

  take(n: number): void {
    if (this.closed) return;
    this.count++;
    this.held += n;
    this.budget.take(n);
  }

  give(n: number): void {
    if (this.closed) return;
    this.count--;
    this.held -= n;
    this.budget.give(n);
  }

  /** The call ended: what the stream holds goes back to the budget. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const n = this.held;
    this.count = 0;
    this.held = 0;
    if (n > 0) this.budget.give(n);
  }

  /** See SendBudget.onRoom. */
  onRoom(wake: () => void): () => void {
    return this.budget.onRoom(wake);
  }
}
