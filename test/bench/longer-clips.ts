/**
 * Makes a sample corpus's clips K times longer: `npx tsx test/bench/longer-clips.ts <corpus> <K>`
 * (in place). The synthetic clips are ~0.4 s (20 frames × 8 codebooks); real speech clips run
 * 5–15 s. Per-record indexing cost has a part that grows with a record's tokens (mapping codes,
 * the clip key, page digests, writing), so the index bench measures at several clip lengths to
 * separate the two. Each codebook's frames are repeated K times; the records' time windows still
 * fall inside the longer clips, so the same records are accepted.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseNpy } from '../../src/corpus/npy.js';
import { encodeNpy } from '../../src/sample/npy-writer.js';

function* npyFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* npyFiles(p);
    else if (e.name.endsWith('.npy')) yield p;
  }
}

/** Rewrites every `.npy` under `<corpus>/audio_tokens` with `scale` times the frames; returns the file count. */
export function lengthenClips(corpus: string, scale: number): number {
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`clip scale must be a positive integer, got ${scale}`);
  let files = 0;
  for (const file of npyFiles(join(corpus, 'audio_tokens'))) {
    const a = parseNpy(readFileSync(file));
    const frames = a.frames * scale;
    const codes = new Int32Array(a.codebooks * frames);
    for (let q = 0; q < a.codebooks; q++)
      for (let f = 0; f < frames; f++) codes[q * frames + f] = a.codes[q * a.frames + (f % a.frames)]!;
    writeFileSync(file, encodeNpy(codes, [a.codebooks, frames], a.dtype));
    files++;
  }
  return files;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [corpus, k] = process.argv.slice(2);
  if (!corpus || !k) throw new Error('usage: longer-clips.ts <corpus> <K>');
  console.log(`${lengthenClips(corpus, Number(k))} clips made ${k}× longer`);
}
