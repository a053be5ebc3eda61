import { FailedPreconditionError } from '../errors.js';
import type { LossReport } from '../mix/policy/policy-runner.js';
import type { MixtureUpdate } from './stream-spec.js';

/** What ranks of one job must say alike for a step: its loss report, or a mixture update applying at it. */
export type SaidKind = 'losses' | 'mixture_update';

/** One rank's report or update as the ledger keeps it. */
export interface Saying {
  readonly kind: SaidKind;
  readonly step: number;
  readonly rank: number;
  /** Canonical digest: equal reports (or updates) hash equally. */
  readonly digest: string;
  /** What was said, for the message of a refusal ("speech/ASR/ASR loss_sum 12.5 over 300 tokens"). */
  readonly parts: ReadonlyMap<string, string>;
}

interface Entry extends Saying {
  /** The stream that said it (forgotten when that stream closes). */
  readonly holder: object;
}

/** Steps of one kind kept per job: reports older than this cannot be sent again anyway (report-window.ts). */
const KEEP_STEPS = 4096;

/**
 * Whether the ranks of one job agree on what they report, per step. Ranks share each planned
 * step (plan-cache.ts) only while they have sent the same reports and updates: ranks that send
 * different ones plan different streams, whose slices overlap (the same records on several ranks)
 * and leave gaps. So the first report (or update) for a step wins, an equal one from another rank
 * is accepted, and a different one from another rank is refused with FAILED_PRECONDITION naming
 * the step, the ranks and what differed; the refused rank's stream ends, the others go on.
 *
 * A job is the open streams with the same index, held-out set, spec and world size: the
 * streams that share planned steps when they agree (rank-agnostic resume tokens make a resumed
 * rank one of them again). Two concurrent jobs of identical settings look like one job; a
 * report from a rank number that already reported the step starts a separate account, so
 * only reports from distinct ranks are compared. Entries of a stream go when it closes.
 */
export class ReportAgreement {
  /** job → `${kind}:${step}` → what the ranks said, first first. */
  private readonly jobs = new Map<string, Map<string, Entry[]>>();

  /** Throws FailedPreconditionError when another rank of `job` said something else for the step; else records it. */
  say(job: string, holder: object, s: Saying): void {
    let steps = this.jobs.get(job);
    if (!steps) this.jobs.set(job, (steps = new Map()));
    const key = `${s.kind}:${s.step}`;
    const said = steps.get(key) ?? [];
    if (!said.some((e) => e.digest === s.digest)) {
      const other = said.find((e) => e.rank !== s.rank);
      if (other) throw disagreement(other, s);
    }
    if (!said.some((e) => e.holder === holder && e.digest === s.digest)) said.push({ ...s, holder });
    steps.delete(key); // re-inserted last: the oldest keys come first when pruning
    steps.set(key, said);
    for (const k of steps.keys()) {
      if (steps.size <= KEEP_STEPS) break;
      steps.delete(k);
    }
  }

  /** Forgets what a closed stream said. */
  release(holder: object): void {
    for (const [job, steps] of this.jobs) {
      for (const [key, said] of steps) {
        const kept = said.filter((e) => e.holder !== holder);
        if (kept.length === 0) steps.delete(key);
        else if (kept.length < said.length) steps.set(key, kept);
      }
      if (steps.size === 0) this.jobs.delete(job);
    }
  }

  /** Steps with something said, over all jobs (for tests). */
  get size(): number {
    let n = 0;
    for (const steps of this.jobs.values()) n += steps.size;
    return n;
  }
}

/** The refusal: the step, both ranks, and each part that differs (at most a few, then how many more). */
function disagreement(first: Saying, late: Saying): FailedPreconditionError {
  const names = [...new Set([...first.parts.keys(), ...late.parts.keys()])];
  const diff = names
    .filter((n) => first.parts.get(n) !== late.parts.get(n))
    .map(
      (n) =>
        `${n}: rank ${first.rank} sent ${first.parts.get(n) ?? 'nothing'}, rank ${late.rank} sent ${late.parts.get(n) ?? 'nothing'}`,
    );
  const shown = diff.slice(0, 4).join('; ') + (diff.length > 4 ? `; and ${diff.length - 4} more` : '');
  const what = first.kind === 'losses' ? 'loss report for step' : 'mixture update applying at step';
  return new FailedPreconditionError(
    'ranks disagree',
    `rank ${late.rank}'s ${what} ${late.step} differs from rank ${first.rank}'s, which this server took first ` +
      `(${shown || 'same parts, different order'}). Ranks of one job must send the same ${first.kind === 'losses' ? 'reports (all-reduce the per-task sums over ranks first)' : 'updates'}, ` +
      `or their streams stop being one partitioned stream; this stream ends, the other ranks go on`,
  );
}

const digestOf = (parts: ReadonlyMap<string, string>): string => JSON.stringify([...parts].sort());

/** A loss report as the ledger compares it: each task's sums, by task path. */
export function lossSaying(r: LossReport, rank: number, taskPaths: readonly string[]): Saying {
  const parts = new Map(
    r.losses.map((l) => [taskPaths[l.task] ?? `task ${l.task}`, `loss_sum ${l.lossSum} over ${l.tokens} tokens`]),
  );
  return { kind: 'losses', step: r.step, rank, digest: digestOf(parts), parts };
}

/** A mixture update as the ledger compares it: its weights and how they spread. */
export function updateSaying(u: MixtureUpdate, rank: number): Saying {
  const m = u.mixture;
  const parts = new Map<string, string>(Object.entries(m.weights).map(([s, w]) => [`weights["${s}"]`, String(w)]));
  parts.set('within', m.within).set('temperature', String(m.temperature)).set('cap', String(m.cap));
  return { kind: 'mixture_update', step: u.applyAtStep, rank, digest: digestOf(parts), parts };
}
