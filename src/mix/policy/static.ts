import type { PolicyRule } from './rule.js';

/**
 * "static", the default: the weights stay what the mixture (and manual updates) say. Reports on
 * such a stream are checked and shown on the status page, but never move the mixture, and the
 * stream does not wait for them.
 */
export const staticPolicy: PolicyRule = {
  defaultLr: 0,
  usesReference: false,
  decide(): never {
    throw new Error('the static policy makes no decisions');
  },
};
