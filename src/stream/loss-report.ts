import { InvalidArgumentError } from '../errors.js';
import type { LossReport, TaskLoss } from '../mix/policy/policy-runner.js';
import { checksum } from '../util/hash.js';

/** A LossReport as it arrives (proto-loader camelCase; uint64 as numbers or strings). */
export interface RawLossReport {
  step?: number | string;
  losses?: { task?: number; lossSum?: number; tokens?: number | string }[];
}

const bad = (field: string, msg: string): InvalidArgumentError => new InvalidArgumentError(`losses.${field}`, msg);

/**
 * Checks a trainer's report before anything uses it, so a bad report changes nothing: a step, at
 * most one entry per task, every task one this train stream can serve, finite non-negative sums
 * and whole token counts. The entries come back sorted by task (the canonical form that
 * `reportDigest` hashes, so equal reports from several ranks hash equally).
 */
export function parseLossReport(
  raw: RawLossReport,
  taskPaths: readonly string[],
  heldout: ReadonlySet<number>,
): LossReport {
  const step = Number(raw.step ?? 0);
  if (!Number.isSafeInteger(step) || step < 0)
    throw bad('step', `must be a non-negative integer, got ${String(raw.step)}`);
  const entries = raw.losses ?? [];
  if (entries.length > taskPaths.length)
    throw bad(
      'losses',
      `has ${entries.length} entries but the index has only ${taskPaths.length} tasks (one entry per task at most)`,
    );
  const seen = new Set<number>();
  const losses: TaskLoss[] = entries.map((e, k) => {
    const task = e.task ?? 0;
    const at = `losses[${k}]`;
    if (!Number.isInteger(task) || task < 0 || task >= taskPaths.length)
      throw bad(
        `${at}.task`,
        `unknown task ${String(task)} (task indices are 0..${taskPaths.length - 1}, see GetCorpusInfo)`,
      );
    const path = taskPaths[task]!;
    if (seen.has(task)) throw bad(`${at}.task`, `task ${task} (${path}) appears twice; send one summed entry per task`);
    seen.add(task);
    if (heldout.has(task))
      throw bad(`${at}.task`, `task ${task} (${path}) is held out; a train stream never serves it`);
    const lossSum = e.lossSum ?? 0;
    if (typeof lossSum !== 'number' || !Number.isFinite(lossSum) || lossSum < 0)
      throw bad(`${at}.loss_sum`, `must be a finite non-negative number, got ${String(lossSum)} (task ${path})`);
    const tokens = Number(e.tokens ?? 0);
    if (!Number.isSafeInteger(tokens) || tokens < 0)
      throw bad(`${at}.tokens`, `must be a non-negative integer below 2^53, got ${String(e.tokens)} (task ${path})`);
    if (tokens === 0 && lossSum > 0)
      throw bad(`${at}.tokens`, `is 0 but loss_sum is ${lossSum} (task ${path}); a loss is summed over tokens`);
    return { task, lossSum, tokens };
  });
  losses.sort((a, b) => a.task - b.task);
  return { step, losses };
}

/** A digest of a checked report: part of the plan-cache key of the step that consumes it. */
export function reportDigest(r: LossReport): string {
  const n = r.losses.length;
  const f = new Float64Array(1 + 3 * n);
  f[0] = r.step;
  r.losses.forEach((l, k) => {
    f[1 + 3 * k] = l.task;
    f[2 + 3 * k] = l.lossSum;
    f[3 + 3 * k] = l.tokens;
  });
  return checksum(new Uint8Array(f.buffer));
}
