/** The stream specs the in-process build benchmarks time: every packing mode and audio layout (8 × 4096, train); k = codebooks served. */
export const BUILD_CASES: Readonly<Record<string, Record<string, unknown>>> = {
  packed: { packing: 'packed' },
  none: { packing: 'none' },
  multiturn: { packing: 'multiturn' },
  'flat k=1': { packing: 'packed', audio: { codebooks: 1, layout: 'flat' } },
  'delay k=all': { packing: 'packed', audio: { codebooks: 0, layout: 'delay' } },
  'delay k=1': { packing: 'packed', audio: { codebooks: 1, layout: 'delay' } },
};
