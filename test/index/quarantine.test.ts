import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUARANTINE_REASONS, type QuarantineEntry } from '../../src/corpus/quarantine.js';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { ROW_WIDTH } from '../../src/index/format.js';
import { IndexReader } from '../../src/index/index-reader.js';
import { injectFaults, type ExpectedEntry } from '../helpers/fault-injection.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { CLI } from '../helpers/cli.js';

const base = mkdtempSync(join(tmpdir(), 'flanstream-quarantine-'));
const template = join(base, 'template');
afterAll(() => rmSync(base, { recursive: true, force: true }));
beforeAll(async () => {
  await writeSampleCorpus(template, { records: 400, seed: 11 });
});

const key = (e: { file: string; line: number; reason: string }): string =>
  `${e.file}:${String(e.line).padStart(7, '0')}:${e.reason}`;
const keys = (es: readonly { file: string; line: number; reason: string }[]): string[] => es.map(key).sort();

function readQuarantine(index: string): QuarantineEntry[] {
  const text = readFileSync(join(index, 'quarantine.jsonl'), 'utf8');
  return text === ''
    ? []
    : text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as QuarantineEntry);
}

function uuidsOf(index: string): string[] {
  const r = IndexReader.open(index);
  try {
    const out: string[] = [];
    r.manifest.shards.forEach((s, i) => {
      expect(r.section(i, 'rows').length).toBe(s.records * ROW_WIDTH * 4);
      for (let row = 0; row < s.records; row++) out.push(r.uuid(i, row));
    });
    return out;
  } finally {
    r.close();
  }
}

function faultyCorpus(
  name: string,
  seed: number,
  perKind: number,
): { corpus: string; expected: ExpectedEntry[]; good: Set<string> } {
  const corpus = join(base, name, 'corpus');
  cpSync(template, corpus, { recursive: true });
  const inj = injectFaults(corpus, { seed, perKind });
  return { corpus, expected: inj.expected, good: inj.goodUuids };
}

/** The CLI as a user runs it (built from the sources under test). */
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.each([
  { seed: 1, perKind: 1, via: 'api', workers: 1 },
  { seed: 2, perKind: 2, via: 'api', workers: 2 },
  { seed: 3, perKind: 3, via: 'cli', workers: 1 },
])(
  'fault injection, seed $seed, $perKind per kind, through the $via, $workers worker(s)',
  ({ seed, perKind, via, workers }) => {
    let run: ReturnType<typeof faultyCorpus>;
    let index: string;
    let stdout = '';
    beforeAll(async () => {
      run = faultyCorpus(`seed${seed}`, seed, perKind);
      index = join(base, `seed${seed}`, 'index');
      if (via === 'api') {
        await buildIndex({ corpus: run.corpus, out: index, workers, audioRoots: [SAMPLE_AUDIO_ROOT] });
        return;
      }
      const r = cli(
        'index',
        run.corpus,
        '--out',
        index,
        '--workers',
        String(workers),
        '--audio-root',
        SAMPLE_AUDIO_ROOT,
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0); // an index was written, quarantined records or not
      stdout = r.stdout;
    });

    it('injected every kind of fault', () => {
      expect(new Set(run.expected.map((e) => e.kind)).size).toBe(21);
      expect(run.expected.filter((e) => e.kind === 'missing_field')).toHaveLength(perKind);
    });

    it('quarantines exactly the injected records and files, each with its reason', () => {
      const got = readQuarantine(index);
      expect(keys(got)).toEqual(keys(run.expected));
      for (const q of got) {
        expect(QUARANTINE_REASONS).toContain(q.reason);
        expect(q.detail.length).toBeGreaterThan(5);
      }
    });

    it('keeps every good record, and only those', () => {
      const uuids = uuidsOf(index);
      expect(uuids.length).toBe(new Set(uuids).size);
      expect(new Set(uuids)).toEqual(run.good);
    });

    it('counts quarantined entries per reason in the manifest', () => {
      const r = IndexReader.open(index);
      const counts: Record<string, number> = {};
      for (const e of run.expected) counts[e.reason] = (counts[e.reason] ?? 0) + 1;
      expect(r.manifest.quarantined).toBe(run.expected.length);
      expect(r.manifest.quarantineByReason).toEqual(counts);
      expect(r.manifest.records).toBe(run.good.size);
      r.close();
    });

    it('never reads a token file through an escaping path', () => {
      const details = readQuarantine(index)
        .filter((q) => q.reason === 'path_escape' || q.reason === 'absolute_path')
        .map((q) => q.detail);
      expect(details.length).toBe(3 * perKind);
      for (const d of details) expect(d).toMatch(/refused/);
    });

    if (via === 'cli')
      it('summarizes the quarantine on stdout, per reason', () => {
        expect(stdout).toContain(`quarantined: ${run.expected.length} (see ${index}/quarantine.jsonl)`);
        expect(stdout).toMatch(new RegExp(`path_escape\\W+${2 * perKind}\\b`));
        expect(stdout).toMatch(new RegExp(`absolute_path\\W+${perKind}\\b`));
        expect(stdout).toMatch(new RegExp(`schema\\W+${2 * perKind}\\b`));
      });

    if (seed === 1)
      it('gives details that name the problem a person has to fix', () => {
        const byReason = new Map(readQuarantine(index).map((q) => [q.reason, q.detail]));
        expect(byReason.get('schema')).toMatch(/\w+: /);
        expect(byReason.get('unknown_domain')).toMatch(/is not speech, music or audio/);
        expect(byReason.get('audio_id_unresolved')).toMatch(/is in no \.scp file/);
        expect(byReason.get('npy_missing')).toMatch(/audio_tokens\/.*\.npy do not exist/);
        expect(byReason.get('npy_malformed')).toMatch(/audio_tokens\/.*\.npy/);
        expect(byReason.get('codebooks_mismatch')).toMatch(/the corpus's codec has 8/);
        expect(byReason.get('audio_window')).toMatch(/audio_start=.*audio_end=/);
        expect(byReason.get('absolute_path')).toMatch(/--audio-root/);
        expect(byReason.get('line_too_long')).toMatch(/exceeds the 1048576-byte limit/);
        expect(byReason.get('truncated_gzip')).toMatch(/gzip/);
        expect(byReason.get('empty_file')).toMatch(/no records/);
      });
  },
);

describe('flanstream index (CLI) on unusable input', () => {
  const fails: [string, () => string, RegExp][] = [
    ['a corpus path that does not exist', () => join(base, 'nope'), /corpus directory does not exist/],
    [
      'a file instead of a directory',
      () => {
        const f = join(base, 'file.jsonl');
        writeFileSync(f, '{}\n');
        return f;
      },
      /corpus directory does not exist|not a directory/,
    ],
    [
      'a directory without metadata/',
      () => {
        const d = join(base, 'plain');
        mkdirSync(d, { recursive: true });
        return d;
      },
      /no metadata\/ directory/,
    ],
    [
      'metadata/ without shards',
      () => {
        const d = join(base, 'noshards');
        mkdirSync(join(d, 'metadata/speech/understanding/test/01_X/jsonl'), { recursive: true });
        return d;
      },
      /holds no JSONL shards/,
    ],
    [
      'shards with nothing usable',
      () => {
        const d = join(base, 'unusable');
        const jsonl = join(d, 'metadata/speech/understanding/test/01_X/jsonl');
        mkdirSync(jsonl, { recursive: true });
        writeFileSync(join(jsonl, 'a.jsonl'), 'not json\n{"uuid": 1}\n');
        writeFileSync(join(jsonl, 'b.jsonl'), '');
        return d;
      },
      /holds nothing usable.*3 problems/,
    ],
  ];
  it.each(fails)('exits non-zero with a clear message for %s', (_name, make, message) => {
    const corpus = make();
    const out = join(base, `out-${_name.replace(/\W+/g, '-')}`);
    const r = cli('index', corpus, '--out', out);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^flanstream: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(existsSync(join(out, 'manifest.msgpack'))).toBe(false);
  });
});
