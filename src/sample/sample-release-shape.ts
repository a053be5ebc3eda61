/**
 * What makes the sample corpus look like the published release rather than the paper's appendix
 * (docs/corpus.md, docs/real-data.md): a third of the records in the release's plain-string form (some without
 * `unseen`, none with a null `other`), time windows on some single-clip records, `.scp` paths in
 * all three forms, and a codec.json. Decisions hash the record or clip number instead of drawing
 * from the corpus's Rng, so the texts and clips stay what they were without these shapes.
 */
import { hashInts } from './sample-rng.js';

/**
 * The fixed, fake prefix of the absolute `.scp` paths the sample corpus writes (as if produced on
 * another machine). Index a sample corpus with `--audio-root /datasets/Audio-FLAN-Dataset`.
 */
export const SAMPLE_AUDIO_ROOT = '/datasets/Audio-FLAN-Dataset';

/** The sample corpus's codec: X-codec-like, 8 codebooks of 1,024 at 50 Hz. */
export const SAMPLE_CODEC = { name: 'xcodec', frame_rate: 50, codebook_size: 1024, codebooks: 8 } as const;

export interface RecordShape {
  readonly split: string;
  readonly major: string;
  readonly minor: string;
  readonly ug: string;
  readonly unseen: boolean;
  readonly domain: string;
  readonly source: readonly string[];
  readonly other: unknown;
}

const SHAPE_SALT = 0x5e1ea5e;

/** What these helpers need of a sample clip. */
interface ClipRef {
  readonly index: number;
  readonly id: string;
  /** Relative to audio_files/. */
  readonly path: string;
  readonly frames: number;
}

/** The fields after `uuid`, as JSON text, in list form (2 of 3 records) or string form. */
export function shapeFields(r: RecordShape, seedKey: number, n: number): string {
  const h = hashInts(seedKey, SHAPE_SALT, n);
  if (h % 3 !== 0) {
    const taskType = { major: [r.major], minor: [r.minor], 'U/G': [r.ug], unseen: r.unseen };
    return `"split":["${r.split}"],"task_type":${JSON.stringify(taskType)},"domain":${JSON.stringify(r.domain)},"source":${JSON.stringify(r.source)},"other":${JSON.stringify(r.other)}`;
  }
  const taskType: Record<string, unknown> = { major: r.major, minor: r.minor, 'U/G': r.ug };
  // The release writes `unseen: false`; absent means the same, and readers must accept both.
  if (r.unseen || (h >> 2) % 2 === 0) taskType['unseen'] = r.unseen;
  const other = r.other === null ? '' : `,"other":${JSON.stringify(r.other)}`;
  return `"split":"${r.split}","task_type":${JSON.stringify(taskType)},"domain":${JSON.stringify(r.domain)},"source":${JSON.stringify(r.source[0] ?? 'unknown')}${other}`;
}

/**
 * `,"audio_start":…,"audio_end":…` for about one single-clip record in six (either bound may be
 * left out), or "". Bounds fall on frame boundaries of the sample codec, inside the clip.
 */
export function windowFields(clip: ClipRef, clipRefs: number, seedKey: number, n: number): string {
  const h = hashInts(seedKey, SHAPE_SALT + 1, n);
  if (clipRefs !== 1 || h % 6 !== 0 || clip.frames < 8) return '';
  const rate = SAMPLE_CODEC.frame_rate;
  const from = hashInts(h, 1) % Math.floor(clip.frames / 3);
  const to = from + 4 + (hashInts(h, 2) % (clip.frames - from - 3));
  const start = from / rate;
  const end = to / rate;
  switch ((h >> 3) % 3) {
    case 0:
      return `,"audio_start":${start}`;
    case 1:
      return `,"audio_end":${end}`;
    default:
      return `,"audio_start":${start},"audio_end":${end}`;
  }
}

/** One `.scp` line: the clip's path relative to audio_files/, to the corpus root, or absolute. */
export function scpLine(clip: ClipRef): string {
  switch (clip.index % 3) {
    case 0:
      return `${clip.id} ${clip.path}\n`;
    case 1:
      return `${clip.id} audio_files/${clip.path}\n`;
    default:
      return `${clip.id} ${SAMPLE_AUDIO_ROOT}/audio_files/${clip.path}\n`;
  }
}
