import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CorpusError } from '../errors.js';
import { SHARDS_DIR } from './format.js';

export const LOCK_FILE = 'index.lock';

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

/** Whether process `pid` of this host is alive (EPERM: alive, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(file: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<Holder>;
    return Number.isSafeInteger(h.pid) && typeof h.host === 'string' ? (h as Holder) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One `index` run per output directory. Two runs into one --out would each delete the other's
 * shards as unreferenced and leave a manifest naming missing files. The lock file is created
 * complete or not at all (written under a private name, then hard-linked into place, which fails
 * if it exists) and names its holder's pid and host. A lock whose holder is a dead process of
 * this host is stale (a killed run) and taken over; a live holder, or one on another host (whose
 * liveness cannot be seen from here), refuses the run.
 */
export class IndexLock {
  private readonly file: string;

  private constructor(file: string) {
    this.file = file;
  }

  static acquire(out: string): IndexLock {
    mkdirSync(out, { recursive: true });
    const file = join(out, LOCK_FILE);
    const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    // Not `*.tmp`: a failing run sweeps those, and this one is another run's claim.
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.claim`;
    writeFileSync(tmp, JSON.stringify(me));
    try {
      try {
        linkSync(tmp, file);
        return new IndexLock(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const busy = IndexLock.refusal(out);
      if (busy) throw busy;
      return IndexLock.takeOver(out, file, tmp);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * Replaces a stale lock (its holder died) with this run's claim `tmp`, under a second lock file
   * taken the same exclusive way. Without it, two runs that found the lock stale at the same moment
   * could both win: one removed the stale lock and linked its own, the other then removed that
   * fresh one and linked its own. Under the second lock the lock is checked again before it is
   * removed, so at most one run replaces it; the other is refused and may run again.
   */
  private static takeOver(out: string, file: string, tmp: string): IndexLock {
    const guard = `${file}.takeover`;
    const again = (): CorpusError =>
      new CorpusError(
        out,
        `another \`flanstream index\` run was taking over the stale ${file} at the same moment; run again`,
      );
    try {
      linkSync(tmp, guard);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A run killed between taking the guard and releasing it leaves it behind: clear it for the next run.
      const holder = readHolder(guard);
      if (!holder || (holder.host === hostname() && !alive(holder.pid))) rmSync(guard, { force: true });
      throw again();
    }
    try {
      const busy = IndexLock.refusal(out);
      if (busy) throw busy;
      rmSync(file, { force: true });
      linkSync(tmp, file);
      return new IndexLock(file);
    } finally {
      unlinkSync(guard);
    }
  }

  /**
   * Why a writer may not touch `out` now: the lock is held by a live process of this host or by
   * one on another host. Undefined when it is free or stale. A partitioned build's parts run side
   * by side and take no lock, but do not start while a whole-index writer holds it.
   */
  static refusal(out: string): CorpusError | undefined {
    const file = join(out, LOCK_FILE);
    if (!existsSync(file)) return undefined;
    const holder = readHolder(file);
    const host = hostname();
    if (!holder || (holder.host === host && !alive(holder.pid))) return undefined;
    const where = holder.host === host ? `pid ${holder.pid}` : `pid ${holder.pid} on host ${holder.host}`;
    const remote = holder.host !== host ? `, or delete ${file} if that run is gone` : '';
    return new CorpusError(
      out,
      `another \`flanstream index\` run (${where}, since ${holder.since}) is writing this index; wait for it to finish${remote}`,
    );
  }

  release(): void {
    try {
      unlinkSync(this.file);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

/**
 * Runs a whole-index writer (a one-process build, the merge of a partitioned one) under the lock.
 * Under it every temporary is this run's or a dead run's, so a failed run, a full disk included,
 * leaves none behind; completed shard files stay, and the next run reuses them.
 */
export async function withIndexLock<T>(out: string, run: () => Promise<T>): Promise<T> {
  const lock = IndexLock.acquire(out);
  try {
    return await run();
  } catch (err) {
    for (const dir of [out, join(out, SHARDS_DIR)]) {
      for (const f of existsSync(dir) ? readdirSync(dir) : [])
        if (f.endsWith('.tmp')) rmSync(join(dir, f), { force: true });
    }
    throw err;
  } finally {
    lock.release();
  }
}
