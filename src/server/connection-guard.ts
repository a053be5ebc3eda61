import type { Socket } from 'node:net';

export interface GuardLimits {
  /** Open connections at most (handshaking or not). */
  readonly maxConnections: number;
  /** A connection that has not finished its handshake this long after it was accepted is closed. */
  readonly handshakeMs: number;
}

/** Why a connection was closed by the guard (the label of its refusal counter). */
export type Refusal = 'max_connections' | 'handshake_timeout' | 'not_http2';

/** One admitted connection: `ready()` once its handshake is done; `refuse()` to close it as one. */
export interface Admitted {
  ready(): void;
  refuse(why: Refusal): void;
}

/**
 * Bounds the connections of one listening port: at most `maxConnections` open, each given
 * `handshakeMs` to finish its handshake. At the cap, a new connection first displaces the oldest
 * one still handshaking (a client that finished its handshake is never cut for a newcomer),
 * and is refused only when every open one has finished. Why: an idle TCP connection costs its
 * peer nothing, so a flood of them would otherwise fill the cap with connections that never speak
 * and lock out the health probes and trainers that do; displacing the oldest idle one keeps the
 * port answering whatever the flood's rate, while file descriptors stay within the cap.
 */
export class ConnectionGuard {
  private readonly limits: GuardLimits;
  private readonly refused: (why: Refusal) => void;
  /** Admitted connections still handshaking, oldest first (a Map keeps insertion order). */
  private readonly handshaking = new Map<Socket, NodeJS.Timeout>();
  private count = 0;
  private idle: (() => void)[] = [];

  constructor(limits: GuardLimits, refused: (why: Refusal) => void) {
    this.limits = limits;
    this.refused = refused;
  }

  /** Open connections (handshaking or not). */
  get open(): number {
    return this.count;
  }

  /** Resolves once no connection is open (shutdown waits for the last bytes to leave). */
  closed(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Takes a freshly accepted socket; undefined when it was refused (and destroyed). */
  admit(socket: Socket): Admitted | undefined {
    if (this.count >= this.limits.maxConnections) {
      const oldest = this.handshaking.keys().next();
      if (oldest.done) {
        this.refused('max_connections');
        socket.destroy();
        return undefined;
      }
      this.close(oldest.value, 'max_connections');
    }
    this.count++;
    // A reset before anyone else listens must not be an unhandled 'error' (grpc-js adds its own later).
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.count--;
      this.settle(socket);
      if (this.count === 0) for (const resolve of this.idle.splice(0)) resolve();
    });
    const timer = setTimeout(() => this.close(socket, 'handshake_timeout'), this.limits.handshakeMs);
    timer.unref();
    this.handshaking.set(socket, timer);
    return {
      ready: () => this.settle(socket),
      refuse: (why) => this.close(socket, why),
    };
  }

  private settle(socket: Socket): void {
    clearTimeout(this.handshaking.get(socket));
    this.handshaking.delete(socket);
  }

  private close(socket: Socket, why: Refusal): void {
    if (!this.handshaking.has(socket)) return;
    this.settle(socket);
    this.refused(why);
    socket.destroy();
  }
}
