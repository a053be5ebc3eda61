import { ado } from './ado.js';
import { excessLoss } from './excess-loss.js';
import { odm } from './odm.js';
import type { PolicyRule } from './rule.js';
import { staticPolicy } from './static.js';

/** The policies a mixture can name (one file each); "static" is the default. */
export const POLICIES = { static: staticPolicy, odm, 'excess-loss': excessLoss, ado } as const satisfies Record<
  string,
  PolicyRule
>;
export type PolicyName = Exclude<keyof typeof POLICIES, 'static'>;
