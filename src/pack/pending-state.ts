import type { ExampleTable } from '../index/example-table.js';
import { checkInt, checkList, refuse } from '../mix/state-check.js';
import type { Overlong, Segment, SegmentLayout } from './segment-layout.js';

/**
 * A train packer's pending units (drawn, not placed yet) as a resume token carries them: per unit
 * [turns, task, i, task, i, …], oldest first. Only the records are stored; each unit is laid out
 * again from them on restore, exactly as it was when drawn.
 */
export function pendingState(units: readonly Segment[]): number[] {
  const out: number[] = [];
  for (const u of units) {
    out.push(u.turns.length);
    for (const t of u.turns) out.push(t.loc.task, t.loc.i);
  }
  return out;
}

export interface PendingContext {
  readonly layout: SegmentLayout;
  readonly table: ExampleTable;
  /** Records per task the stream may walk (0: none, a held-out task). */
  readonly sizes: ArrayLike<number>;
  readonly window: number;
  readonly maxTurns: number;
  readonly seqLen: number;
  readonly overlong: Overlong;
  /** Whether the held-out set's guards remove a record. */
  readonly excluded: (shard: number, row: number) => boolean;
}

/** The units of a token's `pool` section, checked against the index and the spec (`field` names it). */
export function restorePending(value: unknown, field: string, ctx: PendingContext): Segment[] {
  const flat = checkList(field, value);
  const tasks = ctx.table.reader.tasks.length;
  const out: Segment[] = [];
  for (let at = 0; at < flat.length;) {
    if (out.length >= ctx.window) refuse(field, `holds more than window = ${ctx.window} units`);
    const unitAt = at;
    const n = checkInt(`${field}[${at}]`, flat[at], 1, ctx.maxTurns);
    at++;
    if (at + 2 * n > flat.length) refuse(field, `unit ${out.length} is cut short (${n} turns announced)`);
    const turns = [];
    for (let k = 0; k < n; k++, at += 2) {
      const task = checkInt(`${field}[${at}]`, flat[at], 0, tasks - 1);
      const size = ctx.sizes[task] ?? 0;
      if (size === 0) refuse(`${field}[${at}]`, `task ${task} has no train records this stream may serve`);
      const i = checkInt(`${field}[${at + 1}]`, flat[at + 1], 0, size - 1);
      const loc = ctx.table.locate(task, i);
      if (ctx.excluded(loc.shard, loc.row))
        refuse(`${field}[${at + 1}]`, 'names a record that shares audio with the held-out set');
      turns.push(ctx.layout.turn(loc, k > 0));
    }
    const fit = n === 1 ? ctx.layout.fit(turns[0]!.loc, ctx.seqLen, ctx.overlong)?.segment : undefined;
    const unit = fit ?? { turns, length: ctx.layout.segmentLength(turns) };
    if (unit.length > ctx.seqLen)
      refuse(`${field}[${unitAt}]`, `names a unit of ${unit.length} tokens, longer than seq_len = ${ctx.seqLen}`);
    out.push(unit);
  }
  return out;
}
