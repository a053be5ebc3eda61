import { InvalidArgumentError } from '../errors.js';
import type { LossReport } from '../mix/policy/policy-runner.js';
import { reportDigest } from './loss-report.js';

/** A checked report and its digest (part of the plan-cache key of the step that consumes it). */
export interface HeldReport {
  readonly report: LossReport;
  readonly digest: string;
}

/**
 * The loss reports of one train stream between their arrival and the step they feed. Reports come
 * in step order; the last one settles every step before it (a step never reported is missing,
 * which is no error). With a policy (`lag` set), step s + lag is planned only once step s is
 * settled, so a report can never arrive "too late" for the step it should feed, and the stream
 * depends only on which reports were sent, never on when. Held reports are session memory, never
 * in a token (what a token holds must not depend on arrival times); a client sends them again on
 * resume. At most lag + 1 steps of reports are held (plus the steps a build worker planned ahead).
 */
export class ReportWindow {
  /** lag_steps of the stream's policy; undefined for a static stream (reports are only shown). */
  readonly lag: number | undefined;
  private readonly held = new Map<number, HeldReport>();
  /** The last reported step: every step up to it is settled. */
  private settled: number;
  /** The last report accepted, for the status page. */
  last: LossReport | undefined;

  /** `next`: the first step the stream has not planned yet (its token's step). */
  constructor(lag: number | undefined, next: number) {
    this.lag = lag;
    // The token of step next − 1 holds the policy after the report of step next − 1 − lag: later ones are still due.
    this.settled = lag === undefined ? -1 : Math.max(-1, next - lag - 1);
  }

  /**
   * Accepts a checked report of a step already served (`next` = first step not sent). Reports
   * whose step was consumed by a step before `next` are forgotten here, not when that step is
   * planned: a build worker plans ahead of what it sent and may have to plan those steps again
   * (a mixture update rewinds it, see build-worker.ts). Without build-ahead this forgets exactly
   * what planning the steps before `next` did.
   */
  add(r: LossReport, next: number): void {
    for (const step of this.held.keys()) if (step + (this.lag ?? 0) < next) this.held.delete(step);
    if (r.step >= next)
      throw new InvalidArgumentError(
        'losses.step',
        `step ${r.step} has not been served yet (the next step is ${next}); report a step after training on it`,
      );
    if (r.step <= this.settled) {
      if (this.held.get(r.step)?.digest === reportDigest(r)) return; // the same report again: nothing new
      if (this.lag !== undefined && r.step + this.lag < next) {
        throw new InvalidArgumentError(
          'losses.step',
          `step ${r.step} is past the lag window: its decision would apply at step ${r.step + this.lag} (lag_steps = ${this.lag}), which was already built (next step is ${next})`,
        );
      }
      throw new InvalidArgumentError(
        'losses.step',
        `step ${r.step} comes after a report for step ${this.settled}${this.held.has(r.step) ? ' and differs from the report already given for it' : ''}; report steps in increasing order (a skipped step is simply missing)`,
      );
    }
    this.settled = r.step;
    this.last = r;
    // Only a policy stream keeps (and hashes) its reports: a static one never plans from them.
    if (this.lag !== undefined) this.held.set(r.step, { report: r, digest: reportDigest(r) });
  }

  /** True while step `next` must wait for the report of step next − lag. */
  waiting(next: number): boolean {
    return this.lag !== undefined && next - this.lag > this.settled;
  }

  /** The report step `step` consumes (that of step − lag), if it was sent. */
  feeding(step: number): HeldReport | undefined {
    return this.lag === undefined ? undefined : this.held.get(step - this.lag);
  }
}
