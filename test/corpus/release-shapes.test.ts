import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/sample/npy-writer.js';
import { buildIndex } from '../../src/index/build-index.js';
import type { BuildOptions } from '../../src/index/build-plan.js';
import { ROW, SPAN, SPAN_WIDTH } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { CLI } from '../helpers/cli.js';

/**
 * Records, `.scp` paths and codec metadata as the published release ships them (docs/corpus.md,
 * docs/real-data.md), around the verbatim release record in test/fixtures/release-records.jsonl.
 */
const FIXTURE = readFileSync(new URL('../fixtures/release-records.jsonl', import.meta.url), 'utf8');
const base = mkdtempSync(join(tmpdir(), 'flanstream-release-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const A = '07_common_voice_en_27392188';
const B = '07_common_voice_en_27392190';
const codesA = Int32Array.from({ length: 100 }, (_, f) => (f * 7919) % 65536);
const codesB = Int32Array.from({ length: 75 }, (_, f) => 65535 - f);
const CODEC = { name: 'xcodec2', frame_rate: 50, codebook_size: 65536, codebooks: 1 };

interface CorpusOpts {
  lines?: string[];
  scpA?: string;
  codec?: object | string | null;
  extraClip?: { id: string; shape: number[] };
}
let n = 0;
function corpus(o: CorpusOpts = {}): string {
  const dir = join(base, `c${n++}`);
  const put = (rel: string, data: string | Buffer): void => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), data);
  };
  put(
    'metadata/speech/generation/train_dev/07_common_voice/jsonl/part-000.jsonl',
    (o.lines ?? FIXTURE.trimEnd().split('\n')).join('\n') + '\n',
  );
  const scp = [
    `${A} ${o.scpA ?? '/mnt/release/audio_files/speech/07_common_voice/en/27392188.mp3'}`,
    `${B} audio_files/speech/07_common_voice/en/27392190.mp3`,
  ];
  put('audio_tokens/speech/07_common_voice/en/27392188.npy', encodeNpy(codesA, [codesA.length], '<i4'));
  put('audio_tokens/speech/07_common_voice/en/27392190.npy', encodeNpy(codesB, [codesB.length], '<u2'));
  if (o.extraClip) {
    const size = o.extraClip.shape.reduce((a, b) => a * b, 1);
    scp.push(`${o.extraClip.id} speech/07_common_voice/x/${o.extraClip.id}.wav`);
    put(
      `audio_tokens/speech/07_common_voice/x/${o.extraClip.id}.npy`,
      encodeNpy(
        Int32Array.from({ length: size }, (_, i) => i % 1000),
        o.extraClip.shape,
        '<i4',
      ),
    );
  }
  put('scp_files/speech/07_common_voice.scp', scp.join('\n') + '\n');
  if (o.codec !== null)
    put('audio_tokens/codec.json', typeof o.codec === 'string' ? o.codec : JSON.stringify(o.codec ?? CODEC));
  return dir;
}

async function index(dir: string, opts: Partial<BuildOptions> = {}): Promise<IndexReader> {
  const out = `${dir}-index`;
  await buildIndex({ corpus: dir, out, workers: 1, ...opts });
  return IndexReader.open(out);
}

/** The index's quarantine report (quarantine.jsonl), entry by entry. */
const quarantine = (r: IndexReader): { reason: string; detail: string; line: number }[] =>
  readFileSync(join(r.dir, 'quarantine.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { reason: string; detail: string; line: number });

/** The audio spans of a record by uuid: [audio id, tokens]. */
function spansOf(r: IndexReader, uuid: string): [string, number[]][] {
  const shard = 0;
  for (let row = 0; row < r.shard(shard).records; row++) {
    if (r.uuid(shard, row) !== uuid) continue;
    const f = r.row(shard, row);
    const spans = r.spans(shard, f[ROW.SPAN_START] ?? 0, f[ROW.SPAN_COUNT] ?? 0);
    const out: [string, number[]][] = [];
    for (let o = 0; o < spans.length; o += SPAN_WIDTH) {
      const len = spans[o + SPAN.LENGTH] ?? 0;
      const toks = new Int32Array(len);
      r.readTokens(shard, (f[ROW.TOK_START] ?? 0) + (spans[o + SPAN.REL_START] ?? 0), len, toks, 0);
      out.push([r.string(shard, spans[o + SPAN.ID_OFF] ?? 0, spans[o + SPAN.ID_LEN] ?? 0), [...toks]]);
    }
    return out;
  }
  throw new Error(`no record ${uuid}`);
}

describe('records as the release ships them', () => {
  it('indexes the verbatim release record and records like it, in both shapes, quarantining nothing', async () => {
    const r = await index(corpus(), { audioRoots: ['/mnt/release/'] });
    expect(quarantine(r)).toEqual([]);
    expect(r.manifest.records).toBe(4);
    const tasks = Object.fromEntries(r.tasks.map((t) => [t.path, { ug: t.ug, counts: t.counts, unseen: t.unseen }]));
    expect(tasks).toEqual({
      'speech/Speech Generation/Text to Speech': { ug: 'generation', counts: [1, 0, 1], unseen: false },
      'speech/Speech Recognition/ASR': { ug: 'understanding', counts: [1, 1, 0], unseen: true },
    });
    const v = r.manifest.vocab;
    expect(v).toMatchObject({
      codec: 'xcodec2',
      frameRate: 50,
      codebooks: 1,
      codebookSize: 65536,
      audioPadId: v.audioOffset + 65536,
      totalSize: v.audioOffset + 65537,
    });
    const clip = (codes: Int32Array): number[] => [
      v.special.soa,
      ...[...codes].map((c) => v.audioOffset + c),
      v.special.eoa,
    ];
    // The absolute .scp path under --audio-root and the corpus-root-relative one both resolve.
    expect(spansOf(r, '07_common_voice_46e27569d6e1b394')).toEqual([[A, clip(codesA)]]);
    expect(spansOf(r, '07_common_voice_0b6f9a3c41d2e7f8')).toEqual([[B, clip(codesB)]]);
    // audio_start 0.25 s, audio_end 1.0 s at 50 Hz: frames [12, 50).
    expect(spansOf(r, '07_common_voice_5a1e0c9b7d3f2e61')).toEqual([[B, clip(codesB.subarray(12, 50))]]);
    r.close();
  });

  it('inspect reports hours of audio per task and domain from the codec frame rate (windows applied)', async () => {
    const dir = corpus();
    (await index(dir, { audioRoots: ['/mnt/release'] })).close();
    const cli = (...args: string[]): string => {
      const r = spawnSync(process.execPath, [CLI, 'inspect', `${dir}-index`, ...args], {
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    const json = JSON.parse(cli('--json')) as {
      codec: object;
      tasks: { path: string; audioFrames: number; audioHours: number }[];
    };
    expect(json.codec).toEqual({ name: 'xcodec2', frameRate: 50, codebooks: 1, codebookSize: 65536 });
    const hours = Object.fromEntries(json.tasks.map((t) => [t.path, [t.audioFrames, t.audioHours]]));
    // Text to Speech: clips A (100 frames) and B (75); ASR: A and the [12, 50) window of B.
    expect(hours).toEqual({
      'speech/Speech Generation/Text to Speech': [175, 175 / 50 / 3600],
      'speech/Speech Recognition/ASR': [138, 138 / 50 / 3600],
    });
    expect(cli()).toContain(`audio: speech ${(313 / 50 / 3600).toFixed(2)} h (codec xcodec2, 50 Hz, 1 × 65536)`);
  });

  it('quarantines an absolute .scp path no --audio-root covers, naming the flag, and never opens it', async () => {
    const r = await index(corpus());
    const q = quarantine(r);
    expect(q.map((e) => [e.line, e.reason])).toEqual([
      [1, 'absolute_path'],
      [3, 'absolute_path'],
    ]);
    expect(q[0]?.detail).toMatch(/\/mnt\/release\/audio_files\/.*--audio-root/);
    expect(r.manifest.records).toBe(2);
    r.close();
    const other = await index(corpus(), { audioRoots: ['/elsewhere'] });
    expect(quarantine(other).map((e) => e.reason)).toEqual(['absolute_path', 'absolute_path']);
    expect(quarantine(other)[0]?.detail).toMatch(/none of --audio-root \/elsewhere/);
    other.close();
  });

  it('reads .scp paths relative to audio_files/, to the corpus root, and absolute ones under the longest matching root', async () => {
    for (const scpA of [
      'speech/07_common_voice/en/27392188.mp3',
      './audio_files/speech/07_common_voice/en/27392188.mp3',
      '/mnt/release/audio_files/speech/07_common_voice/en/27392188.mp3',
    ]) {
      const r = await index(corpus({ scpA }), { audioRoots: ['/mnt', '/mnt/release'] });
      expect(quarantine(r)).toEqual([]);
      expect(spansOf(r, '07_common_voice_46e27569d6e1b394')[0]?.[1]).toHaveLength(codesA.length + 2);
      r.close();
    }
  });

  it.each([
    ['reversed', '"audio_start": 1.0, "audio_end": 0.5', /reversed/],
    ['past the clip', '"audio_end": 9.0', /outside the clip \(75 frames = 1\.500 s at 50 Hz\)/],
    ['starting after the clip', '"audio_start": 2.0, "audio_end": 2.5', /outside the clip/],
    ['negative', '"audio_start": -0.5', /before the clip/],
  ])('quarantines a time window that is %s, with the numbers', async (_name, window, detail) => {
    const lines = FIXTURE.trimEnd().split('\n');
    lines[3] = lines[3]!.replace('"audio_start": 0.25, "audio_end": 1.0', window);
    const r = await index(corpus({ lines }), { audioRoots: ['/mnt/release'] });
    const q = quarantine(r);
    expect(q.map((e) => [e.line, e.reason])).toEqual([[4, 'audio_window']]);
    expect(q[0]?.detail).toMatch(detail);
    r.close();
  });

  it('needs the frame rate for a window: quarantined without one, served with --frame-rate', async () => {
    const noRate = corpus({ codec: { name: 'xcodec2', codebook_size: 65536, codebooks: 1 } });
    const r = await index(noRate, { audioRoots: ['/mnt/release'] });
    expect(quarantine(r).map((e) => e.reason)).toEqual(['audio_window']);
    expect(quarantine(r)[0]?.detail).toMatch(/frame_rate.*--frame-rate/);
    expect(r.manifest.vocab.frameRate).toBe(0);
    r.close();
    // The flag overrides codec.json: at 25 Hz the window is frames [6, 25).
    const flagged = await index(noRate, { audioRoots: ['/mnt/release'], codec: { frameRate: 25 } });
    expect(quarantine(flagged)).toEqual([]);
    expect(spansOf(flagged, '07_common_voice_5a1e0c9b7d3f2e61')[0]?.[1]).toHaveLength(25 - 6 + 2);
    flagged.close();
  });
});

describe('codec metadata and the codebook count', () => {
  it('quarantines a clip whose codebook count disagrees with codec.json (a transposed array), keeping the vocabulary', async () => {
    const extra = { id: '07_common_voice_en_transposed', shape: [4096, 1] };
    const lines = [
      ...FIXTURE.trimEnd().split('\n'),
      JSON.stringify({
        instruction: 'Transcribe.',
        input: `<|SOA|>${extra.id}<|EOA|>`,
        output: 'x',
        uuid: 'u-transposed',
        split: 'train',
        task_type: { major: 'Speech Recognition', minor: 'ASR', 'U/G': 'understanding' },
        domain: 'speech',
        source: 'x',
      }),
    ];
    const r = await index(corpus({ lines, extraClip: extra }), { audioRoots: ['/mnt/release'] });
    expect(quarantine(r).map((e) => [e.line, e.reason])).toEqual([[5, 'codebooks_mismatch']]);
    expect(quarantine(r)[0]?.detail).toMatch(/4096 codebooks × 1 frames, the corpus's codec has 1/);
    expect(r.manifest.vocab.codebooks).toBe(1);
    r.close();
    // Without codec.json the count is inferred from the clips: still 1, still quarantined.
    const inferred = await index(corpus({ lines, extraClip: extra, codec: null }), {
      audioRoots: ['/mnt/release'],
      codebookSize: 65536,
    });
    expect(quarantine(inferred).map((e) => e.reason)).toEqual(['audio_window', 'codebooks_mismatch']);
    expect(inferred.manifest.vocab).toMatchObject({ codebooks: 1, codebookSize: 65536, codec: '', frameRate: 0 });
    inferred.close();
    // --codebooks says the corpus really has 4096: then the others disagree.
    const forced = await index(corpus({ lines, extraClip: extra }), {
      audioRoots: ['/mnt/release'],
      codec: { codebooks: 4096 },
    });
    expect(forced.manifest.vocab.codebooks).toBe(4096);
    expect(quarantine(forced).map((e) => e.line)).toEqual([1, 2, 3, 4]);
    forced.close();
  });

  it('refuses a malformed codec.json, naming it and the field', async () => {
    await expect(index(corpus({ codec: '{"frame_rate": "fifty"}' }))).rejects.toThrow(
      /audio_tokens\/codec\.json: frame_rate: Expected number/,
    );
    await expect(index(corpus({ codec: '{"rate": 50}' }))).rejects.toThrow(/codec\.json.*Unrecognized key.*rate/);
    await expect(index(corpus({ codec: 'not json' }))).rejects.toThrow(/codec\.json: is not JSON/);
  });

  it('lets --codebook-size override codec.json (then these codes are out of range)', async () => {
    await expect(index(corpus(), { audioRoots: ['/mnt/release'], codebookSize: 1024 })).rejects.toThrow(
      /holds nothing usable.*code 7919 at codebook 0, frame 1 is outside \[0, 1024\)/,
    );
  });
});
