import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CorpusError } from '../errors.js';
import { isS3 } from '../storage/storage.js';
import { SHARDS_DIR } from './format.js';

export const LOCK_FILE = 'index.lock';
/** A serving process's claim: `index.lock.serve.<pid>.<random>`, one per server, beside the writers' lock. */
export const SERVE_CLAIM = `${LOCK_FILE}.serve.`;

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  /** A server's claim: the real path of the directory it serves (a claim copied along with an index is not one on the copy). */
  readonly dir?: string;
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

/** A holder that is gone: a dead process of this host. */
const stale = (h: Holder): boolean => h.host === hostname() && !alive(h.pid);

const who = (h: Holder): string => `pid ${h.pid} on host ${h.host}, since ${h.since}`;

/** A claim file complete or not at all: written under a private name, then hard-linked into place (fails if it exists). */
function linkClaim(file: string, holder: Holder): boolean {
  // Not `*.tmp`: a failing run sweeps those, and this one is another process's claim.
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.claim`;
  writeFileSync(tmp, JSON.stringify(holder));
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Why a writer may not replace the index in `dir`: a live server serves it (a claim of a live
 * process of this host, or of another host). Claims of dead processes of this host are removed.
 */
function servedRefusal(dir: string): CorpusError | undefined {
  let real: string;
  let names: string[];
  try {
    real = realpathSync(dir);
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    if (!name.startsWith(SERVE_CLAIM) || name.endsWith('.claim')) continue;
    const file = join(dir, name);
    const h = readHolder(file);
    if (!h || h.dir !== real || stale(h)) {
      // Garbage, a claim copied with the index from elsewhere, or a server that died: not a claim on this directory.
      rmSync(file, { force: true });
      continue;
    }
    const remote = h.host !== hostname() ? `, or delete ${file} if that server is gone` : '';
    return new CorpusError(
      dir,
      `a flanstream server (${who(h)}) is serving this index; re-indexing the directory a server serves would fail its streams: stop the server first, or index into another directory and serve that one${remote}`,
    );
  }
  return undefined;
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
    const lock = IndexLock.acquireWriter(out);
    // After the lock is linked: a server claims before it checks the lock, so of a writer and a
    // server starting together at least one sees the other.
    const served = servedRefusal(out);
    if (served) {
      lock.release();
      throw served;
    }
    return lock;
  }

  /**
   * A server's claim on the local index directory it serves, held until released (shutdown); a
   * killed server's claim is stale and removed by whoever finds it. Writers (`index`, `--part`,
   * `--merge`) are refused while it is held. Refuses to serve while a writer holds the lock.
   */
  static serve(dir: string): IndexLock {
    const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), dir: realpathSync(dir) };
    const file = join(dir, `${SERVE_CLAIM}${process.pid}.${Math.random().toString(36).slice(2)}`);
    if (!linkClaim(file, me)) throw new CorpusError(dir, `${file} exists already`);
    const claim = new IndexLock(file);
    const busy = IndexLock.writerRefusal(dir);
    if (busy) {
      claim.release();
      throw new CorpusError(dir, `${busy.message.slice(dir.length + 2)}; serve it once that run has finished`);
    }
    return claim;
  }

  /**
   * `serve` for the index a server opens: none for an index on object storage or a directory that
   * does not exist (opening it fails with its own message); a directory this process may not write
   * (a read-only mount) is served unclaimed, told to `warn`.
   */
  static serving(dir: string, warn: (message: string) => void): IndexLock | undefined {
    if (isS3(dir) || !existsSync(dir)) return undefined;
    try {
      return IndexLock.serve(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM') throw err;
      warn(
        `${dir}: cannot write a serving claim (${code}); \`flanstream index\` into it is not refused while this server runs`,
      );
      return undefined;
    }
  }

  private static acquireWriter(out: string): IndexLock {
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
      const busy = IndexLock.writerRefusal(out);
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
      if (!holder || stale(holder)) rmSync(guard, { force: true });
      throw again();
    }
    try {
      const busy = IndexLock.writerRefusal(out);
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
   * one on another host, or a live server serves it. Undefined when it is free or stale. A
   * partitioned build's parts run side by side and take no lock, but do not start while a
   * whole-index writer holds it or a server serves the directory.
   */
  static refusal(out: string): CorpusError | undefined {
    return IndexLock.writerRefusal(out) ?? servedRefusal(out);
  }

  private static writerRefusal(out: string): CorpusError | undefined {
    const file = join(out, LOCK_FILE);
    if (!existsSync(file)) return undefined;
    const holder = readHolder(file);
    const host = hostname();
    if (!holder || stale(holder)) return undefined;
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
