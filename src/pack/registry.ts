import { BestFitWindow } from './best-fit.js';
import { ConversationBuilder } from './conversation.js';
import { wholeItem } from './examples.js';
import { nextFitEvalRow } from './next-fit.js';
import type { PackingStrategy } from './packing.js';
import { fittedItem, singleEvalRow, SingleRow } from './single.js';

/**
 * The packing strategies by their stream-spec name (docs/service.md). Why a table: the stream
 * layer asks it (which splits a name serves, how rows are filled, whether rows are sent as
 * examples) instead of branching on the name, so adding a strategy touches this file and its own.
 * Evaluation streams of `multiturn` serve one item per row (conversations are a train-time
 * construct: an evaluation item is scored alone).
 */
const STRATEGIES = {
  none: {
    name: 'none',
    train: (i) => new SingleRow(i.pending),
    eval: singleEvalRow,
    item: fittedItem,
    sendsExamples: false,
  },
  packed: {
    name: 'packed',
    train: (i) => new BestFitWindow(i.window, i.pending),
    eval: nextFitEvalRow,
    item: fittedItem,
    sendsExamples: false,
  },
  multiturn: {
    name: 'multiturn',
    train: (i) => new BestFitWindow(i.window, i.pending, new ConversationBuilder(i.conversation)),
    eval: singleEvalRow,
    item: fittedItem,
    sendsExamples: false,
  },
  examples: { name: 'examples', eval: singleEvalRow, item: wholeItem, sendsExamples: true },
} as const satisfies Record<string, PackingStrategy>;

export type PackingName = keyof typeof STRATEGIES;
/** Every name, in the order error messages list them. */
export const PACKING_NAMES = Object.keys(STRATEGIES) as readonly PackingName[];

export function packingStrategy(name: PackingName): PackingStrategy {
  return STRATEGIES[name];
}
