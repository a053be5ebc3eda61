import { InvalidArgumentError } from '../errors.js';
import type { SplitIndex } from '../index/index-reader.js';
import type { SegmentLayout } from '../pack/segment-layout.js';
import type { MixtureSpec } from '../mix/mixture.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import type { CorpusCatalog } from './corpus-catalog.js';
import { EvalPlan } from './eval-plan.js';
import type { EvalState } from './eval-planner.js';
import { TokenMint } from './resume-token.js';
import type { StreamPlan } from './stream-plan.js';
import { specHash, type Placement, type StreamSpec } from './stream-spec.js';
import { checksum } from '../util/hash.js';
import { TrainPlan } from './train-plan.js';
import { TrainPlanner, type TrainState } from './train-planner.js';

/** A stream's definition before it has a plan: from a spec, or restored from a token. */
export interface Opening {
  readonly spec: StreamSpec;
  readonly placement: Placement;
  readonly heldout: ResolvedHeldout;
  /** The next global step to build. */
  readonly step: number;
  /** A token's plan state (undefined: a fresh stream). */
  readonly state: unknown;
}

/**
 * The job a train stream belongs to, for report agreement: the same index (one catalog), held-out
 * set, spec and world size, whatever the rank and step (a resumed rank rejoins its job).
 */
function jobKey(o: Opening): string {
  return checksum(Buffer.from(JSON.stringify([o.heldout.fingerprint, specHash(o.spec), o.placement.worldSize])));
}

/**
 * The plan of a stream's split, fresh or in a token's state. Why one function: it wires the
 * catalog's guards, servable records and mixture resolution into the planners the same way for a
 * new stream and for a train planner rebuilt from the stream's own tokens (rewind, plan cache).
 */
export function makePlan(
  catalog: CorpusCatalog,
  o: Opening,
  layoutFor: (s: SplitIndex) => SegmentLayout,
): { plan: StreamPlan; layout: SegmentLayout } {
  const { spec, heldout } = o;
  const mint = new TokenMint(
    { index: catalog.fingerprint, heldout: heldout.fingerprint, spec, worldSize: o.placement.worldSize },
    catalog.settings.tokenKeys,
  );
  // Evaluation items carry their own locations; the layout reads rows through any table.
  const layout = layoutFor(0);
  if (spec.split === 'train') {
    const deps = {
      spec,
      layout,
      table: layout.table,
      heldout,
      filter: catalog.exclusion(heldout, spec.filter),
      servable: catalog.servability(heldout, spec),
      resolve: (m: MixtureSpec, field: string) => catalog.resolveMixture(m, heldout, field, spec),
      shareWindow: catalog.settings.shareWindowSteps,
    };
    const restore = (state: unknown, step: number): TrainPlanner =>
      new TrainPlanner(deps, state as TrainState | undefined, step);
    const plan = new TrainPlan({
      spec,
      layout,
      planner: restore(o.state, o.step),
      restore,
      mint,
      step: o.step,
      worldSize: o.placement.worldSize,
      cache: catalog.plans,
      agreement: { ledger: catalog.agreement, job: jobKey(o), rank: o.placement.rank },
    });
    return { plan, layout };
  }
  // An evaluation stream serves what its filter keeps, every such record once (its items scanned once, cached).
  const filter = catalog.filter(spec.filter);
  const items = catalog.evalItems(spec, heldout);
  if (filter && items.total === 0)
    throw new InvalidArgumentError(
      'filter',
      `${filter.text} keeps no record of the ${spec.split} split (GetCorpusInfo with this filter counts what it keeps per task)`,
    );
  return {
    plan: new EvalPlan({ spec, placement: o.placement, layout, items, mint, state: o.state as EvalState | undefined }),
    layout,
  };
}
