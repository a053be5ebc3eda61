/**
 * Bytes of batches built but not yet handed to the socket, for the whole server. grpc-js queues
 * written messages without bound (object-mode write() returns false only after 16), so a client
 * that stops reading used to hold 16 built batches: 256 idle streams took 11.7 GB. Each stream
 * bounds its own queue (StreamPump); this bounds their sum: beyond its first unsent batch, a
 * stream builds another only while the budget has room, so unsent bytes stay within the budget
 * plus one batch per open stream (and a stream that reads is never starved by idle ones).
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
