/**
 * Seeded fault injection into a (private copy of a) clean sample corpus: every kind of bad input
 * docs/corpus.md names, at random positions, with the exact quarantine entries the indexer must
 * produce and the uuids it must keep. Nothing here uses the indexer's own readers, so the expected
 * outcome is derived independently of the code under test.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { rng } from './seeded-rng.js';
import { encodeNpy } from '../../src/sample/npy-writer.js';
import type { QuarantineReason } from '../../src/corpus/quarantine.js';

export const RECORD_FAULTS = {
  invalid_json: 'invalid_json',
  invalid_utf8: 'invalid_utf8',
  nul_byte: 'nul_byte',
  missing_field: 'schema',
  mistyped_field: 'schema',
  unknown_domain: 'unknown_domain',
  audio_id_unresolved: 'audio_id_unresolved',
  npy_missing: 'npy_missing',
  npy_bad_magic: 'npy_malformed',
  npy_bad_dtype: 'npy_malformed',
  npy_truncated: 'npy_malformed',
  npy_code_range: 'npy_malformed',
  scp_parent_escape: 'path_escape',
  scp_absolute_path: 'absolute_path',
  npy_symlink_out: 'path_escape',
  npy_codebooks: 'codebooks_mismatch',
  bad_window: 'audio_window',
  line_too_long: 'line_too_long',
} as const satisfies Record<string, QuarantineReason>;
export const FILE_FAULTS = ['truncated_line', 'truncated_gzip', 'empty_shard', 'bom_crlf'] as const;
export type FaultKind = keyof typeof RECORD_FAULTS | (typeof FILE_FAULTS)[number];

export interface ExpectedEntry {
  readonly file: string;
  /** 1-based line in the decompressed file; 0 for the whole file. */
  readonly line: number;
  readonly reason: QuarantineReason;
  readonly kind: FaultKind;
}

export interface Injection {
  /** Exactly what quarantine.jsonl must hold (ignoring `detail`), sorted by file and line. */
  readonly expected: ExpectedEntry[];
  /** Every uuid the index must keep: all original records except those a file fault destroyed. */
  readonly goodUuids: Set<string>;
  /** Valid token files outside the corpus that escaping paths point to; they must never be read. */
  readonly outsideDir: string;
  /** Shards changed or added (relative to the corpus root). */
  readonly touched: string[];
}

interface Item {
  bytes: Buffer;
  uuid?: string;
  bad?: { reason: QuarantineReason; kind: FaultKind };
}
interface Shard {
  readonly rel: string;
  readonly gz: boolean;
  items: Item[];
  /** An unterminated last line, appended after every insertion. */
  tail?: Item;
  bomCrlf?: boolean;
  truncateGzip?: boolean;
  touched?: boolean;
}
type Rec = Record<string, unknown> & { uuid: string; domain: string; task_type: Record<string, unknown> };

function listShards(corpus: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (/\.jsonl(\.gz)?$/.test(e.name)) out.push(relative(corpus, join(dir, e.name)));
    }
  };
  walk(join(corpus, 'metadata'));
  return out.sort();
}

const MARK = '@@FAULT@@';
/** A record's JSON with the marker (placed in `instruction`) replaced by raw bytes. */
function withBytes(rec: Rec, bytes: number[]): Buffer {
  const [a, b] = JSON.stringify({ ...rec, instruction: `${String(rec.instruction)}${MARK}` }).split(MARK);
  return Buffer.concat([Buffer.from(a ?? ''), Buffer.from(bytes), Buffer.from(b ?? '')]);
}

/**
 * Mutates `corpus` (a private copy of a clean sample corpus) in place. `perKind` faults of each
 * kind, shards and positions drawn from `seed`. Escaping scp paths point at valid token files in
 * `<parent of corpus>/outside-<seed>/`, so a path that was followed instead of refused shows up
 * as a kept record.
 */
export function injectFaults(
  corpus: string,
  opts: { seed: number; perKind?: number; codebookSize?: number },
): Injection {
  const rand = rng(opts.seed * 7919 + 17);
  const perKind = opts.perKind ?? 1;
  const codebookSize = opts.codebookSize ?? 1024;
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const outsideDir = join(dirname(corpus), `outside-${opts.seed}`);
  mkdirSync(outsideDir, { recursive: true });
  const outsideNpy = join(outsideDir, 'valid.npy');
  writeFileSync(outsideNpy, encodeNpy([1, 2, 3], [3], '<i2'));

  const shards: Shard[] = listShards(corpus).map((rel) => {
    const raw = readFileSync(join(corpus, rel));
    const text = (rel.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    const items = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => ({ bytes: Buffer.from(l), uuid: (JSON.parse(l) as Rec).uuid }));
    return { rel, gz: rel.endsWith('.gz'), items };
  });
  const allRecords = shards.flatMap((s) => s.items.map((i) => JSON.parse(i.bytes.toString()) as Rec));
  let serial = 0;
  const fresh = (): Rec => ({ ...structuredClone(pick(allRecords)), uuid: `fault-${opts.seed}-${serial++}` });
  const free = (pred: (s: Shard) => boolean): Shard => {
    const candidates = shards.filter((s) => !s.truncateGzip && !s.bomCrlf && !s.tail && pred(s));
    if (candidates.length === 0) throw new Error('fault injection: corpus has too few shards for perKind');
    return pick(candidates);
  };

  // File faults first, each on its own shard.
  const extraFiles: ExpectedEntry[] = [];
  for (let k = 0; k < perKind; k++) {
    free((s) => s.gz && s.items.length >= 8).truncateGzip = true;
    free(() => true).bomCrlf = true;
    const t = free(() => true);
    const line = JSON.stringify(fresh());
    t.tail = {
      bytes: Buffer.from(line.slice(0, 1 + int(line.length - 2))),
      bad: { reason: 'truncated_line', kind: 'truncated_line' },
    };
    const host = pick(shards).rel;
    const empty = join(dirname(host), `zz-empty-${opts.seed}-${k}.jsonl`);
    writeFileSync(join(corpus, empty), '');
    extraFiles.push({ file: empty, line: 0, reason: 'empty_file', kind: 'empty_shard' });
  }

  /** A bad record for `kind`, creating the scp entries and token files it needs. */
  const makeBad = (kind: keyof typeof RECORD_FAULTS, shard: Shard): Buffer => {
    const rec = fresh();
    // One fault per record: a time window copied from a good record could fail first on the injected clip.
    delete rec.audio_start;
    delete rec.audio_end;
    const [, domain, , , dataset] = shard.rel.split('/');
    rec.domain = domain ?? 'speech';
    const audioId = `${dataset}_fault${opts.seed}x${serial}`;
    const refer = (scpPath: string): void => {
      writeFileSync(join(corpus, 'scp_files', rec.domain, `${dataset}.scp`), `${audioId} ${scpPath}\n`, { flag: 'a' });
      rec.input = `audio: <|SOA|>${audioId}<|EOA|>\ntext: what is it?`;
    };
    const npyAt = `${rec.domain}/${dataset}/fault/${audioId}`;
    const writeNpy = (data: Buffer): void => {
      mkdirSync(join(corpus, 'audio_tokens', dirname(npyAt)), { recursive: true });
      writeFileSync(join(corpus, 'audio_tokens', `${npyAt}.npy`), data);
      refer(`${npyAt}.wav`);
    };
    const tt = rec.task_type;
    switch (kind) {
      case 'invalid_json': {
        const json = JSON.stringify(rec);
        return Buffer.from(
          pick([
            `${json.slice(0, -1)},}`,
            json.replace('"uuid"', 'uuid'),
            json.replace(/"/g, "'"),
            json.slice(0, json.length >> 1),
            `${json}}`,
          ]),
        );
      }
      case 'invalid_utf8':
        return withBytes(
          rec,
          pick([
            [0xff, 0xfe],
            [0xc0, 0xaf],
            [0xed, 0xa0, 0x80],
            [0xe4, 0xb8, 0x41],
          ]),
        );
      case 'nul_byte':
        return withBytes(rec, [0x41, 0x00, 0x42]);
      case 'missing_field': {
        // `other` and `task_type.unseen` may be absent (docs/corpus.md): not faults.
        const path = pick([
          'instruction',
          'input',
          'output',
          'uuid',
          'split',
          'task_type',
          'domain',
          'source',
          'task_type.minor',
          'task_type.major',
          'task_type.U/G',
        ]);
        if (path.startsWith('task_type.')) delete tt[path.slice(10)];
        else delete rec[path];
        break;
      }
      case 'mistyped_field':
        pick<() => void>([
          () => (rec.split = 'validation'),
          () => (rec.split = ['validation']),
          () => (rec.split = []),
          () => (rec.instruction = 42),
          () => (rec.output = null),
          () => (rec.source = 7 as unknown as string),
          () => (rec.other = 'none'),
          () => (rec.uuid = 7 as unknown as string),
          () => (tt.unseen = 'false'),
          () => (tt.major = ''),
          () => (tt.minor = []),
          () => (tt['U/G'] = ['both']),
        ])();
        break;
      case 'unknown_domain':
        rec.domain = pick(['video', 'Speech', '', 'speech ']);
        break;
      case 'audio_id_unresolved':
        rec.input = `<|SOA|>${pick([`${dataset}_nowhere_${serial}`, `99_Nowhere_${serial}`, ''])}<|EOA|>`;
        break;
      case 'npy_missing':
        refer(`${npyAt}.flac`);
        break;
      case 'npy_bad_magic':
        writeNpy(Buffer.from('RIFF....WAVEfmt not a numpy file'));
        break;
      case 'npy_bad_dtype': {
        const f = encodeNpy([1, 2, 3, 4], [4], '<i4');
        writeNpy(Buffer.from(f.toString('latin1').replace("'<i4'", "'<f4'"), 'latin1'));
        break;
      }
      case 'npy_truncated': {
        const f = encodeNpy(
          Array.from({ length: 16 }, (_, i) => i),
          [2, 8],
          '<i2',
        );
        writeNpy(f.subarray(0, f.length - 1 - int(16)));
        break;
      }
      case 'npy_code_range': {
        // The corpus's 8 codebooks (anything else is codebooks_mismatch), one code out of range.
        const codes = [0, 5, 7, 1, 2, 3, 4, 6, 9, 8, 1, 2, 3, 4, 5, 6];
        codes[int(codes.length)] = codebookSize + int(3);
        writeNpy(encodeNpy(codes, [8, 2], '<i4'));
        break;
      }
      case 'npy_codebooks':
        // A [frames, codebooks] array saved transposed, or a 1-D file in an 8-codebook corpus.
        writeNpy(
          pick([
            encodeNpy(
              Array.from({ length: 16 }, (_, i) => i),
              [2, 8],
              '<i2',
            ),
            encodeNpy([1, 2, 3], [3], '<i4'),
          ]),
        );
        break;
      case 'bad_window':
        writeNpy(
          encodeNpy(
            Array.from({ length: 40 }, (_, i) => i),
            [8, 5],
            '<i4',
          ),
        );
        Object.assign(
          rec,
          pick([
            { audio_start: 0.08, audio_end: 0.02 },
            { audio_end: 2 },
            { audio_start: -1 },
            { audio_start: 0.5, audio_end: 0.6 },
          ]),
        );
        break;
      case 'scp_parent_escape':
        refer(pick([`../../outside-${opts.seed}/valid.wav`, `${rec.domain}/../../../outside-${opts.seed}/valid.wav`]));
        break;
      case 'scp_absolute_path':
        refer(pick([join(outsideDir, 'valid.wav'), '/etc/passwd']));
        break;
      case 'npy_symlink_out':
        mkdirSync(join(corpus, 'audio_tokens', dirname(npyAt)), { recursive: true });
        symlinkSync(outsideNpy, join(corpus, 'audio_tokens', `${npyAt}.npy`));
        refer(`${npyAt}.wav`);
        break;
      case 'line_too_long':
        rec.instruction = `${'long '.repeat((2 << 20) / 5)}`;
        break;
    }
    return Buffer.from(JSON.stringify(rec));
  };

  for (const kind of Object.keys(RECORD_FAULTS) as (keyof typeof RECORD_FAULTS)[]) {
    for (let k = 0; k < perKind; k++) {
      const shard = pick(shards.filter((s) => !s.truncateGzip));
      shard.items.splice(int(shard.items.length + 1), 0, {
        bytes: makeBad(kind, shard),
        bad: { reason: RECORD_FAULTS[kind], kind },
      });
      shard.touched = true;
    }
  }

  const expected: ExpectedEntry[] = [...extraFiles];
  const goodUuids = new Set<string>();
  const touched = extraFiles.map((e) => e.file);
  for (const s of shards) {
    if (!s.touched && !s.bomCrlf && !s.tail && !s.truncateGzip) {
      for (const i of s.items) goodUuids.add(i.uuid ?? '');
      continue;
    }
    touched.push(s.rel);
    const items = s.tail ? [...s.items, s.tail] : s.items;
    const eol = Buffer.from(s.bomCrlf ? '\r\n' : '\n');
    const body = Buffer.concat([
      ...(s.bomCrlf ? [Buffer.from([0xef, 0xbb, 0xbf])] : []),
      ...items.flatMap((i) => (i === s.tail ? [i.bytes] : [i.bytes, eol])),
    ]);
    if (!s.truncateGzip) {
      items.forEach((i, n) => {
        if (i.bad) expected.push({ file: s.rel, line: n + 1, ...i.bad });
        else goodUuids.add(i.uuid ?? '');
      });
      writeFileSync(join(corpus, s.rel), s.gz ? gzipSync(body) : body);
      continue;
    }
    // Cut the compressed stream; what zlib can still inflate is the salvage the indexer must keep.
    const gz = gzipSync(body);
    const cut = gz.subarray(0, Math.floor(gz.length * (0.3 + 0.4 * rand())));
    writeFileSync(join(corpus, s.rel), cut);
    expected.push({ file: s.rel, line: 0, reason: 'truncated_gzip', kind: 'truncated_gzip' });
    let salvage: string;
    try {
      salvage = gunzipSync(cut, { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8');
    } catch {
      salvage = '';
    }
    const lines = salvage.split('\n');
    const partial = lines.pop() ?? '';
    lines.forEach((_, n) => goodUuids.add(s.items[n]?.uuid ?? ''));
    if (partial !== '') {
      const whole = s.items[lines.length];
      if (whole && whole.bytes.toString() === partial) goodUuids.add(whole.uuid ?? '');
      else expected.push({ file: s.rel, line: lines.length + 1, reason: 'truncated_line', kind: 'truncated_gzip' });
    }
  }
  expected.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
  return { expected, goodUuids, outsideDir, touched: touched.sort() };
}

/** Cuts a sample corpus down to the shards of the given datasets (scp and token files stay), for small, fast indexes. */
export function keepDatasets(corpus: string, datasets: readonly string[]): void {
  const keep = new Set(datasets);
  for (const rel of listShards(corpus)) {
    if (!keep.has(rel.split('/')[4] ?? '')) rmSync(join(corpus, rel));
  }
}
