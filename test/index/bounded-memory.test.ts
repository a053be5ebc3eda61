import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/index/build-index.js';
import { buildPart, mergeParts } from '../../src/index/build-part.js';
import type { BuildLimits } from '../../src/index/build-limits.js';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { keepDatasets } from '../helpers/fault-injection.js';
import { indexTree as tree } from '../helpers/index-tree.js';

/**
 * A build in bounded memory spills what grows with the corpus (`.scp` tables, the cross-shard
 * sorts) to disk past its limits. The limits decide only memory: an index built with every limit
 * tiny, so that every spilled path runs, is the in-memory build byte for byte (hence the same
 * fingerprint and streams), in one process, on worker threads, and partitioned then merged.
 */
const base = mkdtempSync(join(tmpdir(), 'flanstream-bounded-'));
const corpus = join(base, 'corpus');
const inMemory = join(base, 'in-memory');
const spillDir = join(base, 'tmp');
/** Every `.scp` spilled (the smallest is far over 1 byte); 5 records per sorted bucket. */
const TINY: BuildLimits = { scpSpillBytes: 1, bucketRecords: 5 };
const audioRoots = [SAMPLE_AUDIO_ROOT];
let tmpBefore: string | undefined;
/** The spilled tables' temporaries left in spillDir (tsx, running the worker threads, keeps its cache there too). */
const spilled = (): string[] => readdirSync(spillDir).filter((f) => f.startsWith('flanstream-'));

beforeAll(async () => {
  await writeSampleCorpus(corpus, { records: 300, seed: 11 });
  keepDatasets(corpus, ['07_ESD', '01_CommonVoice', '02_Emilia', '20_MTG-Jamendo', '39_AudioSet']);
  await buildIndex({ corpus, out: inMemory, workers: 1, audioRoots });
  // The spilled scp tables' temporaries go here, to be checked for leftovers.
  mkdirSync(spillDir);
  tmpBefore = process.env.TMPDIR;
  process.env.TMPDIR = spillDir;
});
afterAll(() => {
  if (tmpBefore === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = tmpBefore;
  rmSync(base, { recursive: true, force: true });
});

describe('an index built with tiny memory limits', () => {
  it('in one process is the in-memory build, byte for byte, and leaves no temporaries', async () => {
    const out = join(base, 'one');
    const summary = await buildIndex({ corpus, out, workers: 1, audioRoots, limits: TINY });
    expect(summary.manifest.audioGroups.entries).toBeGreaterThan(10);
    expect(tree(out)).toEqual(tree(inMemory));
    expect(spilled()).toEqual([]);
  });

  it('on two worker threads is the same index', async () => {
    const out = join(base, 'workers');
    await buildIndex({ corpus, out, workers: 2, audioRoots, limits: TINY });
    expect(tree(out)).toEqual(tree(inMemory));
    expect(spilled()).toEqual([]);
  });

  it('in two parts and a merge is the same index', async () => {
    const out = join(base, 'parts');
    for (let i = 0; i < 2; i++)
      await buildPart({ corpus, out, workers: 1, audioRoots, limits: TINY, part: { index: i, count: 2 } });
    await mergeParts({ corpus, out, audioRoots, limits: TINY });
    expect(tree(out)).toEqual(tree(inMemory));
  });
});
