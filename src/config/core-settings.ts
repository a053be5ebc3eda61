import type { CoreSettings } from '../stream/data-service-core.js';
import type { Loaded } from './load-config.js';

/** The stream layer's settings from the loaded configuration. */
export function coreSettings({ config: c, mixtures, heldoutSets }: Loaded): CoreSettings {
  return {
    mixtures,
    heldoutSets,
    defaultHeldout: c.default_heldout,
    defaults: { window: c.stream.window, overlong: c.stream.overlong, maxTurns: c.stream.max_turns },
    limits: { maxBatchTokens: c.server.max_batch_tokens, maxSeqLen: c.server.max_seq_len, maxWorldSize: c.server.max_world_size },
    systemPrompt: c.stream.system_prompt,
    shareWindowSteps: c.stream.share_window_steps,
    cacheBytes: c.index.cache_bytes,
    tokenKey: c.server.token_key,
  };
}
