import { StorageError } from '../errors.js';
import { StorageNotFound } from './storage.js';

/** The manifest's name in an index (the index layer's MANIFEST_FILE; storage sits below it). */
export const MANIFEST = 'manifest.msgpack';

/**
 * Whether the index an S3Storage opened is still the one published: the ETag of its manifest in
 * the listing taken at open against the one now (a HEAD). Asked when a pinned read fails (was
 * the object alone replaced, which is damage, or the whole index republished?), and every
 * `every` ms by `check`, which never waits for the answer: a server polls it to go NOT_SERVING on
 * a republication, as it stats a local manifest.
 */
export class S3Publication {
  /** Set once the publication was found replaced or deleted: what happened. */
  private reason: string | undefined;
  private lastCheck = 0;
  private checking = false;
  /** Whether the last periodic look saw another manifest (or none). */
  private differed = false;

  constructor(
    /** The index's location (`s3://bucket/prefix`), which messages name. */
    private readonly location: string,
    /** The manifest's ETag at open (undefined before the listing). */
    private readonly opened: () => string | undefined,
    /** Its ETag now, blocking (throws StorageNotFound when it is gone). */
    private readonly etagNow: () => string,
    /** Its ETag now, without blocking the thread. */
    private readonly etagNowAsync: () => Promise<string>,
    private readonly every: number,
  ) {}

  /** What happened to the publication, naming its location, once it was found replaced or deleted. */
  get changed(): string | undefined {
    return this.reason === undefined ? undefined : `${this.location}: ${this.reason}`;
  }

  /** Sets the reason when the manifest's ETag now (undefined: deleted) is not the one listed at open. */
  private compared(opened: string, now: string | undefined): string | undefined {
    if (now === opened) return this.reason;
    this.reason ??= `the index this replica opened (${MANIFEST} ETag ${opened}) was ${now === undefined ? 'deleted' : `republished (ETag now ${now})`} under it; restart the replica to serve what is there now`;
    return this.reason;
  }

  /** Whether the manifest is still the one listed at open; what changed if not. */
  private now(): string | undefined {
    const opened = this.opened();
    if (this.reason || !opened) return this.reason;
    let now: string | undefined;
    try {
      now = this.etagNow();
    } catch (err) {
      if (!(err instanceof StorageNotFound)) throw err;
    }
    return this.compared(opened, now);
  }

  /** The same without blocking the thread. */
  private async nowAsync(): Promise<string | undefined> {
    const opened = this.opened();
    if (this.reason || !opened) return this.reason;
    return this.compared(opened, await this.etagAsync());
  }

  /** The manifest's ETag now (undefined: gone), without blocking the thread. */
  private async etagAsync(): Promise<string | undefined> {
    try {
      return await this.etagNowAsync();
    } catch (err) {
      if (err instanceof StorageNotFound) return undefined;
      throw err;
    }
  }

  /**
   * What is known of a change now; starts another look (answered later) when `every` ms passed
   * since the last one and none is under way. A change is taken when two looks in a row see one
   * (a store that replaces an object in place may answer a HEAD meanwhile with neither ETag). A
   * store that does not answer is not a republication: the next look asks again.
   */
  check(): string | undefined {
    const t = Date.now();
    if (this.reason || this.checking || this.every <= 0 || t - this.lastCheck < this.every) return this.changed;
    this.lastCheck = t;
    this.checking = true;
    void this.look()
      .catch(() => undefined)
      .finally(() => {
        this.checking = false;
      });
    return undefined;
  }

  private async look(): Promise<void> {
    const opened = this.opened();
    if (this.reason || !opened) return;
    const now = await this.etagAsync();
    if (now === opened) this.differed = false;
    else if (this.differed) this.compared(opened, now);
    else this.differed = true;
  }

  /**
   * A pinned read's failure on `object`, explained when the object changed or vanished: the
   * index republished or deleted (FAILED_PRECONDITION naming the location, and `changed` set), or,
   * when the manifest did not change, the object damaged. Other failures are returned as they are.
   */
  explain(object: string, err: unknown): unknown {
    return changedObject(err) ? explained(this.location, object, err, this.now()) : err;
  }

  /** The same without blocking the thread. */
  async explainAsync(object: string, err: unknown): Promise<unknown> {
    return changedObject(err) ? explained(this.location, object, err, await this.nowAsync()) : err;
  }
}

/** A pinned read refused because its object is not the one listed at open (replaced, or gone). */
const changedObject = (err: unknown): boolean =>
  err instanceof StorageNotFound || (err instanceof StorageError && /PreconditionFailed/.test(err.message));

function explained(location: string, object: string, err: unknown, why: string | undefined): Error {
  if (why) return new StorageError(location, why, false);
  return new Error(
    `${object} ${err instanceof StorageNotFound ? 'was deleted' : 'was replaced'} since the index was opened, while its manifest was not: the object is damaged`,
    { cause: err },
  );
}
