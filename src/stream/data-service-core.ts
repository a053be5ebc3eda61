import type { LossReport } from '../mix/policy/policy-runner.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import { CorpusCatalog, type CoreSettings } from './corpus-catalog.js';
import type { ScanOptions } from './catalog-cache.js';
import type { RawLossReport } from './loss-report.js';
import type { Opening } from './planner-factory.js';
import type { StreamSession } from './stream-session.js';
import type { MixtureUpdate } from './stream-spec.js';
import { StreamOpener } from './stream-opener.js';
import type { RawOpen, RawUpdate } from './stream-request.js';
import { StreamUpdates } from './stream-updates.js';

/**
 * The data service without its transport, as its three parts: the corpus catalog (index-level
 * tables, named sets, caches), opening a stream (spec or token → session) and what a running
 * stream accepts (mixture updates, loss reports). Why a composition root and nothing more: one
 * object to open per index for src/server and the tests, while each concept lives in its own file.
 */
export class DataServiceCore {
  readonly catalog: CorpusCatalog;
  private readonly opener: StreamOpener;
  private readonly updates: StreamUpdates;

  private constructor(catalog: CorpusCatalog) {
    this.catalog = catalog;
    this.updates = new StreamUpdates(catalog);
    this.opener = new StreamOpener(catalog, this.updates);
  }

  static async open(indexDir: string, settings: CoreSettings): Promise<DataServiceCore> {
    return new DataServiceCore(await CorpusCatalog.open(indexDir, settings));
  }

  /** A stream from its first message: a spec or a resume token, and updates to queue. */
  open(raw: RawOpen): StreamSession {
    return this.opener.open(raw);
  }

  /** A first message checked and resolved without opening a session (see StreamOpener.opening). */
  opening(raw: RawOpen): Opening {
    return this.opener.opening(raw);
  }

  /** `open` with its scans between event-loop turns, admitted before them (see StreamOpener.openAsync). */
  openAsync(raw: RawOpen, opts?: ScanOptions): Promise<StreamSession> {
    return this.opener.openAsync(raw, opts);
  }

  /** `opening` with its scans between event-loop turns (see StreamOpener.openingAsync). */
  openingAsync(raw: RawOpen, opts?: ScanOptions): Promise<Opening> {
    return this.opener.openingAsync(raw, opts);
  }

  /** Sessions opened since start (/metrics: with build workers, theirs are added). */
  get opens(): number {
    return this.opener.opened;
  }

  /** A mixture update sent while a stream runs. */
  update(raw: RawUpdate): MixtureUpdate {
    return this.updates.update(raw);
  }

  /** A trainer's loss report, checked against the index and the stream's held-out set. */
  lossReport(raw: RawLossReport, heldout: ResolvedHeldout): LossReport {
    return this.updates.lossReport(raw, heldout);
  }
}
