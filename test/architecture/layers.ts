/**
 * The layer rule of src/, written down once: each top-level folder (or file) of src/ is a layer,
 * and a module may import only from its own layer or a lower one. Why: the domain must stay
 * usable without its transport (only src/server touches grpc-js), and a feature added to a low
 * layer (a new audio layout, a packing strategy, a storage backend) must not drag in what serves
 * it. docs/architecture.md explains each layer; the check is import-graph.ts.
 *
 * Lowest first. Layers on one rank are peers and must not import each other.
 * `tokenize` (the vocabulary: text tokenizer, special markers, audio-token layouts) sits below
 * `corpus` and `index` because reading records names its markers and building the index tokenizes.
 */
export const LAYER_RANKS: Readonly<Record<string, number>> = {
  errors: 0,
  util: 0,
  storage: 1,
  tokenize: 2,
  corpus: 3,
  // The synthetic-corpus generator writes what corpus reads; neither imports the other.
  sample: 3,
  index: 4,
  mix: 5,
  // Stream filters: their grammar, and which records of an index they keep.
  filter: 5,
  pack: 6,
  splits: 7,
  stream: 8,
  config: 9,
  metrics: 9,
  server: 10,
  cli: 11,
};

/**
 * Imports (`from → to`, relative to src/) allowed to close a cycle or go up a layer while a
 * change removes them (none today). The check ignores exactly these edges: anything else fails,
 * and an entry whose import is gone is reported so it is deleted here.
 */
export const KNOWN_EDGES: readonly string[] = [];
