import type { CoreSettings } from '../stream/corpus-catalog.js';
import type { S3Settings } from '../storage/s3-location.js';
import type { Loaded } from './load-config.js';
import type { Config } from './schema.js';

/** Object-storage client settings from `storage.s3` (shared by `serve` and `flanstream index --config`). */
export function s3Settings(s: Config['storage']['s3']): S3Settings {
  return {
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    ...(s.region ? { region: s.region } : {}),
    ...(s.force_path_style !== undefined ? { forcePathStyle: s.force_path_style } : {}),
    ...(s.access_key_id ? { accessKeyId: s.access_key_id, secretAccessKey: s.secret_access_key } : {}),
    maxAttempts: s.max_attempts,
    blockBytes: s.block_bytes,
    readAhead: s.read_ahead_blocks,
    cacheBlocks: s.cache_blocks,
    maxConcurrency: s.max_concurrency,
    manifestCheckMs: s.manifest_check_ms,
  };
}

/** The stream layer's settings from the loaded configuration. */
export function coreSettings({ config: c, mixtures, heldoutSets }: Loaded): CoreSettings {
  return {
    mixtures,
    heldoutSets,
    defaultHeldout: c.default_heldout,
    defaults: { window: c.stream.window, overlong: c.stream.overlong, maxTurns: c.stream.max_turns, shuffle: c.stream.shuffle, shuffleWindow: c.stream.shuffle_window },
    limits: {
      maxBatchTokens: c.server.max_batch_tokens,
      maxSeqLen: c.server.max_seq_len,
      maxWorldSize: c.server.max_world_size,
      maxStepTokens: c.server.max_step_tokens,
      maxSelectors: c.server.max_selectors,
    },
    systemPrompt: c.stream.system_prompt,
    shareWindowSteps: c.stream.share_window_steps,
    cacheBytes: c.index.cache_bytes,
    catalogCacheBytes: c.stream.catalog_cache_bytes,
    readAhead: { prefetchBytes: c.index.prefetch_bytes, readConcurrency: c.index.read_concurrency },
    readAheadSteps: c.index.read_ahead_steps,
    tokenKeys: c.server.token_keys.length > 0 ? c.server.token_keys : c.server.token_key !== '' ? [c.server.token_key] : [],
    s3: s3Settings(c.storage.s3),
  };
}
