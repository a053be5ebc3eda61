import type { IndexReader } from '../index/index-reader.js';
import type { ChatTemplate } from '../pack/chat-template.js';
import type { ResolvedHeldout } from '../splits/heldout.js';
import type { MixtureSpec } from '../mix/mixture.js';
import type { StreamSpec } from './stream-spec.js';

/** What a stream needs from the server: the index, the template, and spec resolution. */
export interface StreamContext {
  readonly reader: IndexReader;
  readonly template: ChatTemplate;
  /** Resolves a held-out spec (cached per fingerprint); errors name `field`. */
  resolveHeldout(spec: StreamSpec['heldout'], name: string, field?: string): ResolvedHeldout;
  /** Resolves a mixture against a held-out set into target proportions over task ids. */
  resolveMixture(mixture: MixtureSpec, heldout: ResolvedHeldout, field?: string): Float64Array;
}
