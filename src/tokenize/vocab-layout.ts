import type { SpecialIds } from './text-tokenizer.js';

/**
 * The model vocabulary: text ids first, then audio codes at
 * `audioOffset + q * codebookSize + code` for codebook q (docs/corpus.md), then one `audioPadId`
 * that fills the holes of layouts shifting codebooks against each other (docs/real-data.md).
 */
export interface VocabLayout {
  readonly tokenizer: string;
  readonly tokenizerFingerprint: string;
  readonly textVocabSize: number;
  readonly special: SpecialIds;
  readonly audioOffset: number;
  readonly codebooks: number;
  readonly codebookSize: number;
  /** audioOffset + codebooks × codebookSize: the first id after every audio code. */
  readonly audioPadId: number;
  readonly totalSize: number;
  /** Codec frames per second (0 = unknown) and its name ("" = unknown). */
  readonly frameRate: number;
  readonly codec: string;
}

export function makeVocabLayout(
  tok: { name: string; fingerprint: string; vocabSize: number; special: SpecialIds },
  codebooks: number,
  codebookSize: number,
  codec: { readonly name: string; readonly frameRate: number } = { name: '', frameRate: 0 },
): VocabLayout {
  const audioPadId = tok.vocabSize + codebooks * codebookSize;
  return {
    tokenizer: tok.name,
    tokenizerFingerprint: tok.fingerprint,
    textVocabSize: tok.vocabSize,
    special: tok.special,
    audioOffset: tok.vocabSize,
    codebooks,
    codebookSize,
    audioPadId,
    totalSize: audioPadId + 1,
    frameRate: codec.frameRate,
    codec: codec.name,
  };
}
