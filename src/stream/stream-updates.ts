import { InvalidArgumentError, ResourceExhaustedError } from '../errors.js';
import type { LossReport } from '../mix/policy/policy-runner.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import type { CorpusCatalog } from './corpus-catalog.js';
import { parseLossReport, type RawLossReport } from './loss-report.js';
import type { StreamSession } from './stream-session.js';
import { MAX_PENDING_UPDATES, type MixtureUpdate } from './stream-spec.js';
import type { RawUpdate } from './stream-request.js';

/**
 * What a trainer may send while its stream runs: mixture updates (a named mixture as the base,
 * explicit fields on top, taking effect at a step) and loss reports for closed-loop policies.
 * Why apart from opening: these arrive at any time, up to one per step, and are checked against
 * the catalog, not against a new stream.
 */
export class StreamUpdates {
  private readonly catalog: CorpusCatalog;
  /** Task index → path, for the messages of refused reports (built once: a report may come every step). */
  private taskPaths: readonly string[] | undefined;

  constructor(catalog: CorpusCatalog) {
    this.catalog = catalog;
  }

  update(raw: RawUpdate): MixtureUpdate {
    const step = Number(raw.applyAtStep ?? 0);
    if (!Number.isSafeInteger(step) || step < 0)
      throw new InvalidArgumentError(
        'mixture_update.apply_at_step',
        `must be a non-negative integer, got ${String(raw.applyAtStep)}`,
      );
    return { mixture: this.catalog.named.mixture(raw, 'mixture_update'), applyAtStep: step };
  }

  /** The updates of a stream's first message, queued before its first batch. */
  queue(session: StreamSession, updates: readonly RawUpdate[]): void {
    if (updates.length > MAX_PENDING_UPDATES)
      throw new ResourceExhaustedError(
        'pending mixture updates (updates in the first message)',
        updates.length,
        MAX_PENDING_UPDATES,
      );
    for (const u of updates) session.addUpdate(this.update(u));
  }

  /** A trainer's loss report, checked against the index and the stream's held-out set. */
  lossReport(raw: RawLossReport, heldout: ResolvedHeldout): LossReport {
    this.taskPaths ??= this.catalog.tasks.map((t) => t.path);
    return parseLossReport(raw, this.taskPaths, heldout.tasks);
  }
}
