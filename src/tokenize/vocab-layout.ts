import type { SpecialIds } from './text-tokenizer.js';

/**
 * The model vocabulary: text ids first, then audio codes at
 * `audioOffset + q * codebookSize + code` for codebook q (CONTRACT §2).
 */
export interface VocabLayout {
  readonly tokenizer: string;
  readonly tokenizerFingerprint: string;
  readonly textVocabSize: number;
  readonly special: SpecialIds;
  readonly audioOffset: number;
  readonly codebooks: number;
  readonly codebookSize: number;
  readonly totalSize: number;
}

export function makeVocabLayout(
  tok: { name: string; fingerprint: string; vocabSize: number; special: SpecialIds },
  codebooks: number,
  codebookSize: number,
): VocabLayout {
  return {
    tokenizer: tok.name,
    tokenizerFingerprint: tok.fingerprint,
    textVocabSize: tok.vocabSize,
    special: tok.special,
    audioOffset: tok.vocabSize,
    codebooks,
    codebookSize,
    totalSize: tok.vocabSize + codebooks * codebookSize,
  };
}
