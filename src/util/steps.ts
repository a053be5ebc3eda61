/**
 * Sliced scans: long synchronous work (a scan of every record when a stream opens) written as a
 * generator that yields at slice boundaries, run either in one go (`finish`: tools, tests, build
 * workers) or between event-loop turns (`drive`: the server), so health checks and other streams
 * are served while it runs. A scan may also yield a need (pages to make resident): `drive` hands
 * it to its `need` function and waits for what that returns before going on, holding it until the
 * next slice boundary; `finish` skips needs (reading on the spot instead).
 */

/** What a sliced scan yields: undefined at a slice boundary, or a need to satisfy before it goes on. */
export type Step<N = unknown> = undefined | { readonly need: N };

/** A sliced scan returning T. */
export type Steps<T, N = unknown> = Generator<Step<N>, T, void>;

/** Something held while a scan uses it (pages made resident), released at the next slice boundary. */
export interface Holding {
  release(): void;
}

/** A scan stopped because its signal was aborted (the client went away while its stream opened). */
export class ScanAborted extends Error {
  constructor() {
    super('scan aborted');
    this.name = 'ScanAborted';
  }
}

/** Work between two turns when a scan does not say (a few ms: health and other streams wait no longer). */
export const SLICE_MS = 4;

export interface DriveOptions<N> {
  /** Stops the scan at its next slice boundary (ScanAborted). */
  readonly signal?: AbortSignal;
  /** Longest run between turns (default SLICE_MS); a scan yields often enough that a slice overshoots little. */
  readonly sliceMs?: number;
  /** Gives the event loop a turn (default: setImmediate). */
  readonly pause?: () => Promise<void>;
  /** Makes a need true (pages resident) and holds it; undefined: needs are skipped. */
  readonly need?: (n: N) => Promise<Holding>;
  /** Runs one stretch of the scan (the server: where a page not in memory is refused, not read). */
  readonly run?: <R>(fn: () => R) => R;
  /** Called after each turn given away (tests count turns). */
  readonly onTurn?: () => void;
}

export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Runs a scan to its end at once (needs skipped: pages are read where they are missed). */
export function finish<T, N>(g: Steps<T, N>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs a scan between event-loop turns: at a slice boundary past `sliceMs` it gives the loop a
 * turn, and stops if `signal` was aborted meanwhile; at a need it waits for `need` (the loop runs
 * meanwhile) and holds what it gave until the next boundary.
 */
export async function drive<T, N>(g: Steps<T, N>, opts: DriveOptions<N> = {}): Promise<T> {
  const { signal, sliceMs = SLICE_MS, pause = nextTurn, need, run, onTurn } = opts;
  const held: Holding[] = [];
  const release = (): void => {
    for (const h of held.splice(0)) h.release();
  };
  const aborted = (): void => {
    if (signal?.aborted) throw new ScanAborted();
  };
  try {
    aborted();
    let since = performance.now();
    for (;;) {
      const r = run ? run(() => g.next()) : g.next();
      if (r.done) return r.value;
      if (r.value !== undefined) {
        if (need) {
          held.push(await need(r.value.need));
          onTurn?.();
          aborted();
          since = performance.now();
        }
        continue;
      }
      release();
      if (performance.now() - since >= sliceMs) {
        await pause();
        onTurn?.();
        aborted();
        since = performance.now();
      }
    }
  } finally {
    release();
    // A scan stopped half way runs its finally blocks (nothing half made is kept).
    g.return(undefined as T);
  }
}

/**
 * Turns for long loops in async code (reading ahead for a very large step): `due()` is true once
 * `sliceMs` passed since the last turn (the clock read every 32 calls), and `turn()` gives the
 * event loop one. Written `if (t.due()) await t.turn();` so most iterations await nothing.
 */
export function turns(sliceMs = SLICE_MS, pause = nextTurn): { due(): boolean; turn(): Promise<void> } {
  let since = performance.now();
  let calls = 0;
  return {
    due: () => (++calls & 31) === 0 && performance.now() - since >= sliceMs,
    turn: async () => {
      await pause();
      since = performance.now();
    },
  };
}
