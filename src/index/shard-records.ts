/**
 * The first pass over a shard's lines: each parsed and checked (JSON, schema, domain, a uuid not
 * accepted before in the shard) and its audio references resolved to clip tokens (scp entry,
 * .npy, codebooks, window). A record with any problem is quarantined with its reason; the rest
 * are tokenized and laid out by shard-builder.ts.
 */
import { splitAudioRefs } from '../corpus/audio-refs.js';
import { frameWindow } from '../corpus/audio-window.js';
import { NpyFormatError } from '../corpus/npy.js';
import type { QuarantineEntry } from '../corpus/quarantine.js';
import { parseRecord } from '../corpus/record-parse.js';
import { isDomain, taskPath, type FlanRecord } from '../corpus/record-schema.js';
import type { ShardLine } from '../corpus/shard-lines.js';
import type { IndexOptions } from './format.js';
import type { ShardTools } from './shard-tools.js';

/** A piece of a field: text still to tokenize, or a clip's finished tokens (`<|SOA|>` codes `<|EOA|>`). */
export type Piece =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'audio'; readonly id: string; readonly tokens: Int32Array; readonly codebooks: number };

export interface Accepted {
  readonly rec: FlanRecord;
  readonly line: number;
  readonly fields: readonly (readonly Piece[])[];
  readonly task: string;
}

/** A shard's accepted records in line order, and the audio files they used (the shard's deps). */
export interface AcceptedRecords {
  readonly accepted: Accepted[];
  readonly npyDeps: Map<string, readonly [string, number, number]>;
  readonly scpDeps: Map<string, string>;
}

/** Checks and resolves the lines of `source`; every record that fails goes to `quarantine`. */
export function acceptRecords(
  source: string,
  lines: readonly ShardLine[],
  quarantine: QuarantineEntry[],
  tools: Pick<ShardTools, 'audio' | 'clips'>,
  options: IndexOptions,
): AcceptedRecords {
  const { audio, clips } = tools;
  const npyDeps = new Map<string, readonly [string, number, number]>();
  const scpDeps = new Map<string, string>();
  const accepted: Accepted[] = [];
  /** Accepted uuids and their lines: a later record with one is quarantined naming the first. */
  const seen = new Map<string, number>();
  const { codebooks, frameRate } = options.codec;

  for (const { line, text, unterminated } of lines) {
    const bad = (reason: QuarantineEntry['reason'], detail: string): void => {
      quarantine.push({ file: source, line, reason, detail });
    };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      if (unterminated) bad('truncated_line', 'the last line ends without a newline and is not complete JSON');
      else bad('invalid_json', (err as Error).message);
      continue;
    }
    const parsed = parseRecord(json);
    if (!parsed.ok) {
      bad('schema', parsed.detail);
      continue;
    }
    const rec = parsed.rec;
    if (!isDomain(rec.domain)) {
      bad('unknown_domain', `domain "${rec.domain}" is not speech, music or audio`);
      continue;
    }
    const first = seen.get(rec.uuid);
    if (first !== undefined) {
      bad('duplicate_uuid', `uuid ${rec.uuid} already appears at ${source}:${first}`);
      continue;
    }
    let problem: { reason: QuarantineEntry['reason']; detail: string } | undefined;
    const fields: Piece[][] = [];
    for (const field of [rec.instruction, rec.input, rec.output]) {
      const pieces: Piece[] = [];
      for (const part of splitAudioRefs(field)) {
        if (part.kind === 'text') {
          pieces.push(part);
          continue;
        }
        const r = audio.resolve(rec.domain, part.id);
        if (!r.ok) {
          problem = r;
          break;
        }
        if (r.npy.codebooks !== codebooks) {
          problem = {
            reason: 'codebooks_mismatch',
            detail: `${r.file} has ${r.npy.codebooks} codebooks × ${r.npy.frames} frames, the corpus's codec has ${codebooks} (a [frames, codebooks] array saved transposed looks like this; set "codebooks" in audio_tokens/codec.json or --codebooks if the corpus really has ${r.npy.codebooks})`,
          };
          break;
        }
        const win = frameWindow(r.npy.frames, rec.audio_start, rec.audio_end, frameRate);
        if (!win.ok) {
          problem = { reason: 'audio_window', detail: `${r.file}: ${win.detail}` };
          break;
        }
        const tokens = clips.tokens(r.npy, win.from, win.to, options.codebookSize);
        if (tokens instanceof NpyFormatError) {
          problem = { reason: 'npy_malformed', detail: `${r.file}: ${tokens.message}` };
          break;
        }
        npyDeps.set(r.file, [r.file, r.size, r.mtimeMs]);
        scpDeps.set(r.scp, r.scpHash);
        pieces.push({ kind: 'audio', id: part.id, tokens, codebooks: r.npy.codebooks });
      }
      if (problem) break;
      fields.push(pieces);
    }
    if (problem) {
      bad(problem.reason, problem.detail);
      continue;
    }
    seen.set(rec.uuid, line);
    const task = taskPath(rec.domain, rec.task_type.major[0] ?? '', rec.task_type.minor[0] ?? '');
    accepted.push({ rec, line, fields, task });
  }
  return { accepted, npyDeps, scpDeps };
}
