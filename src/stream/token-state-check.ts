import { InvalidArgumentError } from '../errors.js';
import { DOMAINS } from '../corpus/record-schema.js';
import type { MixtureSpec } from '../mix/mixture.js';
import type { Contamination } from '../splits/contamination.js';
import { policyArms } from '../mix/policy/arms.js';
import { checkPolicyState } from '../mix/policy/policy-runner.js';
import type { ExampleTable } from '../index/example-table.js';
import { MAX_PENDING_UPDATES, type StreamSpec } from './stream-spec.js';

/**
 * Checks the `state` of a decoded resume token before any of it is used. A token is client input:
 * unsigned ones can be re-encoded at will, and even a signed one may come from an older server. A
 * walker cursor at its permutation's size once sent `Permutation.at` into an endless cycle walk,
 * so every field is checked against the index and the spec, and a bad one is refused with
 * INVALID_ARGUMENT naming it (`resume.token.state.walker.cursors[3]`).
 *
 * One validator per state section, in a registry: a new section (a mixture policy's state, say)
 * adds its entry to TRAIN_SECTIONS and is checked like the others; a section the registry does not
 * know is refused, so no unchecked field reaches a planner.
 */
export interface TrainCheckContext {
  readonly spec: StreamSpec;
  /** The token's step: the next global step to build. */
  readonly step: number;
  readonly table: ExampleTable;
  /** Records per task a train stream walks (0 for held-out tasks). */
  readonly sizes: ArrayLike<number>;
  readonly filter: Contamination | undefined;
  readonly resolve: (m: MixtureSpec, field: string) => Float64Array;
}

type Section<C> = (value: unknown, field: string, ctx: C) => void;

const FIELD = 'resume.token.state';

export function refuse(field: string, message: string): never {
  throw new InvalidArgumentError(field, message);
}

const isInt = (v: unknown, min: number, max: number): v is number => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;

export function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (!isInt(v, min, max)) refuse(field, `must be an integer in [${min}, ${max}], got ${describe(v)}`);
  return v;
}

/** A list of exactly `n` integers, element i in [0, max(i)]. */
export function checkInts(field: string, xs: unknown, n: number, max: (i: number) => number = () => Number.MAX_SAFE_INTEGER): number[] {
  if (!Array.isArray(xs)) refuse(field, `must be a list, got ${describe(xs)}`);
  if (xs.length !== n) refuse(field, `has ${xs.length} entries; this index has ${n} tasks`);
  for (let i = 0; i < n; i++) checkInt(`${field}[${i}]`, xs[i], 0, max(i));
  return xs as number[];
}

function object(field: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) refuse(field, `must be an object, got ${describe(v)}`);
  return v as Record<string, unknown>;
}

function describe(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'string') return `"${v.slice(0, 32)}"`;
  return Array.isArray(v) ? `a list of ${v.length}` : typeof v;
}

const STATS_VECTORS = ['examples', 'textTokens', 'audioTokens', 'audioFrames', 'dropped', 'truncated'] as const;

/** Running totals (stream-stats.ts): one count per task, and the padding. */
export function checkStats(value: unknown, field: string, tasks: number): void {
  const s = object(field, value);
  for (const k of STATS_VECTORS) checkInts(`${field}.${k}`, s[k], tasks);
  checkInt(`${field}.padding`, s.padding, 0, Number.MAX_SAFE_INTEGER);
}

function checkMixture(value: unknown, field: string, ctx: TrainCheckContext): void {
  const m = object(field, value);
  object(`${field}.weights`, m.weights);
  ctx.resolve(m as unknown as MixtureSpec, field);
}

const tasksOf = (ctx: TrainCheckContext): number => ctx.table.reader.tasks.length;

export const TRAIN_SECTIONS: Readonly<Record<string, Section<TrainCheckContext>>> = {
  sampler(value, field, ctx) {
    const s = object(field, value);
    const counts = checkInts(`${field}.counts`, s.counts, tasksOf(ctx));
    const drawn = checkInt(`${field}.drawn`, s.drawn, 0, Number.MAX_SAFE_INTEGER);
    // Every draw, credit and undo moves one count and `drawn` together.
    const sum = counts.reduce((a, b) => a + b, 0);
    if (sum !== drawn) refuse(`${field}.drawn`, `is ${drawn} but the counts add up to ${sum}`);
  },
  walker(value, field, ctx) {
    const w = object(field, value);
    // A cursor is a position in its task's permutation of this epoch: below the task's size.
    checkInts(`${field}.cursors`, w.cursors, tasksOf(ctx), (t) => Math.max(0, (ctx.sizes[t] ?? 0) - 1));
    checkInts(`${field}.epochs`, w.epochs, tasksOf(ctx), (t) => ((ctx.sizes[t] ?? 0) > 0 ? Number.MAX_SAFE_INTEGER : 0));
  },
  pool(value, field, ctx) {
    if (!Array.isArray(value)) refuse(field, `must be a list, got ${describe(value)}`);
    let units = 0;
    for (let at = 0; at < value.length; units++) {
      if (units >= ctx.spec.window) refuse(field, `holds more than window = ${ctx.spec.window} units`);
      const n = checkInt(`${field}[${at}]`, value[at], 1, ctx.spec.maxTurns);
      at++;
      if (at + 2 * n > value.length) refuse(field, `unit ${units} is cut short (${n} turns announced)`);
      for (let k = 0; k < n; k++, at += 2) {
        const task = checkInt(`${field}[${at}]`, value[at], 0, tasksOf(ctx) - 1);
        const size = ctx.sizes[task] ?? 0;
        if (size === 0) refuse(`${field}[${at}]`, `task ${task} has no train records this stream may serve`);
        const i = checkInt(`${field}[${at + 1}]`, value[at + 1], 0, size - 1);
        const loc = ctx.table.locate(task, i);
        if (ctx.filter?.excluded(loc.shard, loc.row)) refuse(`${field}[${at + 1}]`, 'names a record that shares audio with the held-out set');
      }
    }
  },
  stats(value, field, ctx) {
    checkStats(value, field, tasksOf(ctx));
  },
  mixture: checkMixture,
  /** Share baselines (share-window.ts); absent in tokens made before they existed. */
  shares(value, field, ctx) {
    if (value === undefined) return;
    const s = object(field, value);
    checkInt(`${field}.window`, s.window, 1, Number.MAX_SAFE_INTEGER);
    checkInt(`${field}.updateStep`, s.updateStep, 0, ctx.step);
    checkInt(`${field}.windowStart`, s.windowStart, 0, ctx.step);
    for (const k of ['atUpdate', 'atWindowStart', 'atBlockStart']) checkInts(`${field}.${k}`, s[k], tasksOf(ctx));
  },
  pending(value, field, ctx) {
    if (!Array.isArray(value)) refuse(field, `must be a list, got ${describe(value)}`);
    if (value.length > MAX_PENDING_UPDATES) refuse(field, `holds ${value.length} updates; at most ${MAX_PENDING_UPDATES} may wait`);
    let last = ctx.step - 1;
    value.forEach((u: unknown, k) => {
      const p = object(`${field}[${k}]`, u);
      // Updates wait for steps not yet built, in order, one per step.
      last = checkInt(`${field}[${k}].applyAtStep`, p.applyAtStep, last + 1, Number.MAX_SAFE_INTEGER);
      checkMixture(p.mixture, `${field}[${k}].mixture`, ctx);
    });
  },
  /** Only streams whose mixture has a policy carry one (policy-runner.ts checks its fields). */
  policy(value, field, ctx) {
    const { mixture } = ctx.spec;
    if (!mixture.policy) {
      if (value !== undefined) refuse(field, 'is set but the token\'s mixture has no policy');
      return;
    }
    const arms = policyArms(mixture, ctx.table.reader.tasks, ctx.resolve(mixture, 'resume.token.spec.mixture'), DOMAINS);
    checkPolicyState(value, field, arms.selectors.length);
  },
};

/** Checks every section of a train state, and that it has no other. */
export function checkTrainState(state: unknown, ctx: TrainCheckContext): void {
  checkSections(state, TRAIN_SECTIONS, ctx);
}

export interface EvalCheckContext {
  readonly tasks: number;
  /** Evaluation items in the stream. */
  readonly total: number;
}

export const EVAL_SECTIONS: Readonly<Record<string, Section<EvalCheckContext>>> = {
  cursor(value, field, ctx) {
    checkInt(field, value, 0, ctx.total);
  },
  stats(value, field, ctx) {
    checkStats(value, field, ctx.tasks);
  },
};

export function checkEvalState(state: unknown, ctx: EvalCheckContext): void {
  checkSections(state, EVAL_SECTIONS, ctx);
}

function checkSections<C>(state: unknown, sections: Readonly<Record<string, Section<C>>>, ctx: C): void {
  const s = object(FIELD, state);
  for (const key of Object.keys(s)) if (!(key in sections)) refuse(`${FIELD}.${key}`, 'is not part of a token this server makes');
  for (const [key, check] of Object.entries(sections)) check(s[key], `${FIELD}.${key}`, ctx);
}
