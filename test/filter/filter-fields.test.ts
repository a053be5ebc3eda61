import { beforeAll, describe, expect, inject, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { RecordFilter } from '../../src/filter/record-filter.js';
import { IndexReader, type SplitIndex } from '../../src/index/index-reader.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { readCorpusFields, type CorpusFields } from '../helpers/corpus-fields.js';

const SPLITS = ['train', 'dev', 'test'] as const;

/** Median of a field over the corpus (a threshold that splits it). */
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

describe('stream filters against an independent reading of the corpus', () => {
  let reader: IndexReader;
  let records: CorpusFields[];

  beforeAll(async () => {
    reader = IndexReader.open(inject('sampleIndex'));
    const served = new Set<string>();
    reader.manifest.shards.forEach((s, i) => {
      for (let r = 0; r < s.records; r++) if (!reader.isExcluded(i, r)) served.add(reader.uuid(i, r));
    });
    // The sample corpus plants bad records; the index quarantines them (tested elsewhere).
    records = (await readCorpusFields(inject('sampleCorpus'), SAMPLE_AUDIO_ROOT)).filter((r) => served.has(r.uuid));
    expect(records.length).toBe(reader.manifest.records);
  });

  /** Per task path and split, records the filter keeps: from the index, and from the corpus files. */
  function compare(text: string, keep: (r: CorpusFields) => boolean): number {
    const filter = RecordFilter.parse(reader, text)!;
    const got = new Map<string, number>();
    const want = new Map<string, number>();
    for (const t of reader.tasks)
      SPLITS.forEach((s, k) => {
        const n = filter.count(t.id, k as SplitIndex);
        if (n > 0) got.set(`${t.path} ${s}`, n);
      });
    for (const r of records)
      if (keep(r)) for (const s of r.split) want.set(`${r.task} ${s}`, (want.get(`${r.task} ${s}`) ?? 0) + 1);
    expect(Object.fromEntries([...got].sort()), text).toEqual(Object.fromEntries([...want].sort()));
    let kept = 0;
    for (const n of want.values()) kept += n;
    return kept;
  }

  it('keeps exactly the records each field selects, per task and split', () => {
    const total = records.reduce((n, r) => n + r.split.length, 0);
    const cut = (field: 'text_tokens' | 'audio_tokens' | 'audio_seconds' | 'clips'): number =>
      median(records.map((r) => r[field]));
    const some = (n: number): void => {
      // Every case must select a proper part of the corpus, or it tests nothing.
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThan(total);
    };
    some(compare('domain == "music"', (r) => r.domain === 'music'));
    const task = records[7]!.task;
    some(compare(`task == "${task}"`, (r) => r.task === task));
    const dataset = records[11]!.dataset;
    some(compare(`dataset != "${dataset}"`, (r) => r.dataset !== dataset));
    some(compare('ug == "generation"', (r) => r.ug === 'generation'));
    some(compare('unseen == true', (r) => r.unseen));
    const source = records.find((r) => r.source.length > 0)!.source[0]!;
    some(compare(`source == "${source}"`, (r) => r.source.includes(source)));
    some(compare('split in ["dev", "test"]', (r) => r.split.includes('dev') || r.split.includes('test')));
    const text = cut('text_tokens');
    some(compare(`text_tokens <= ${text}`, (r) => r.text_tokens <= text));
    const audio = cut('audio_tokens');
    some(compare(`audio_tokens > ${audio}`, (r) => r.audio_tokens > audio));
    const seconds = cut('audio_seconds');
    some(compare(`audio_seconds < ${seconds}`, (r) => r.audio_seconds < seconds));
    some(compare(`audio_seconds >= ${seconds}`, (r) => r.audio_seconds >= seconds));
    some(compare('clips == 1', (r) => r.clips === 1));
    some(compare('clips >= 2', (r) => r.clips >= 2));
    some(
      compare(
        `ug == "generation" and audio_seconds <= ${seconds} and not (source == "${source}" or domain == "audio")`,
        (r) =>
          r.ug === 'generation' && r.audio_seconds <= seconds && !(r.source.includes(source) || r.domain === 'audio'),
      ),
    );
  });

  it('refuses audio_seconds on an index without a frame rate', () => {
    const noRate = Object.create(reader) as IndexReader;
    Object.defineProperty(noRate, 'manifest', {
      value: { ...reader.manifest, vocab: { ...reader.manifest.vocab, frameRate: 0 } },
    });
    expect(() => RecordFilter.parse(noRate, 'audio_seconds < 3')).toThrow(InvalidArgumentError);
    expect(RecordFilter.parse(noRate, 'clips < 3')).toBeDefined();
  });
});
