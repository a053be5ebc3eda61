import { splitIndex, type SplitIndex } from '../index/index-reader.js';
import type { SegmentLayout } from '../pack/segment-layout.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import type { CorpusCatalog } from './corpus-catalog.js';
import { EvalItems } from './eval-items.js';
import { EvalPlanner, type EvalState } from './eval-planner.js';
import type { Planner } from './stream-session.js';
import type { StreamSpec } from './stream-spec.js';
import { TrainPlanner, type TrainState } from './train-planner.js';

/**
 * The planner of a stream's split, fresh or in a token's state. Why one function: a train
 * stream's planner is also rebuilt from its own tokens (the plan cache of multi-rank jobs), and
 * both paths must wire the catalog's guards, servable records and mixture resolution the same way.
 */
export function makePlanner(catalog: CorpusCatalog, spec: StreamSpec, heldout: ResolvedHeldout, layoutFor: (s: SplitIndex) => SegmentLayout, state: unknown, step: number): { plan: Planner; layout: SegmentLayout } {
  if (spec.split === 'train') {
    const layout = layoutFor(0);
    const planner = new TrainPlanner(
      { spec, layout, table: layout.table, heldout, filter: catalog.guard(heldout), servable: catalog.servability(heldout, spec), resolve: (m, field) => catalog.resolveMixture(m, heldout, field, spec), shareWindow: catalog.settings.shareWindowSteps },
      state as TrainState | undefined,
      step,
    );
    return { plan: { kind: 'train', planner }, layout };
  }
  // Held-out datasets move their records of other tasks from dev/test to the heldout stream.
  const isHeld = (task: number, shard: number): boolean => heldout.tasks.has(task) || heldout.shards.has(shard);
  const want = spec.split === 'heldout';
  const splits: SplitIndex[] = want ? (heldout.spec.scope === 'test' ? [2] : [0, 1, 2]) : [splitIndex(spec.split)];
  const items = new EvalItems(catalog.reader, (task, shard) => isHeld(task, shard) === want, splits);
  // Evaluation items carry their own locations; the layout reads rows through any table.
  const layout = layoutFor(0);
  return { plan: { kind: 'eval', planner: new EvalPlanner(items, layout, spec, state as EvalState | undefined), items }, layout };
}
