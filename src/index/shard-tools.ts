import { AudioResolver, type ResolverLimits } from '../corpus/audio-resolver.js';
import type { CorpusFiles } from '../corpus/corpus-files.js';
import { EncodeCache } from '../tokenize/encode-cache.js';
import type { TextTokenizer } from '../tokenize/text-tokenizer.js';
import { ClipTokens } from './clip-tokens.js';

/**
 * What the shard builder keeps from one shard to the next of a build (one set per process or
 * index worker): the corpus's clips and scp maps, texts already encoded, clip windows already
 * mapped and digested. All bounded; all give exactly what computing afresh would.
 */
export interface ShardTools {
  readonly tok: TextTokenizer;
  readonly audio: AudioResolver;
  readonly encoder: EncodeCache;
  readonly clips: ClipTokens;
}

export function shardTools(
  tok: TextTokenizer,
  files: CorpusFiles,
  audioRoots: readonly string[],
  limits: ResolverLimits = {},
): ShardTools {
  return {
    tok,
    audio: new AudioResolver(files, audioRoots, limits),
    encoder: new EncodeCache(tok),
    clips: new ClipTokens(tok),
  };
}
