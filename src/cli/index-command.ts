import type { BuildOptions, BuildProgress } from '../index/build-plan.js';
import { buildIndexTo } from '../index/build-to.js';
import { formatBytes, formatTable } from './format-table.js';

export async function indexCommand(
  corpus: string,
  opts: { out: string; tokenizer: string; workers: number; stage?: string } & Pick<
    BuildOptions,
    'codebookSize' | 'codec' | 'audioRoots' | 's3'
  >,
): Promise<void> {
  const tty = process.stderr.isTTY;
  const started = performance.now();
  const progress = (p: BuildProgress): void => {
    if (!tty) return;
    const secs = (performance.now() - started) / 1000;
    const pct = Math.floor((100 * p.shardsDone) / p.shardsTotal);
    process.stderr.write(
      `\r\x1b[Kindexing ${p.shardsDone}/${p.shardsTotal} shards (${pct}%)  ${p.records.toLocaleString('en-US')} records  ${(p.bytes / 1e6 / Math.max(secs, 1e-3)).toFixed(1)} MB/s`,
    );
  };
  const s = await buildIndexTo({
    corpus,
    out: opts.out,
    tokenizer: opts.tokenizer,
    workers: opts.workers,
    codebookSize: opts.codebookSize,
    codec: opts.codec,
    audioRoots: opts.audioRoots,
    s3: opts.s3,
    stage: opts.stage,
    onProgress: progress,
  });
  if (tty) process.stderr.write('\r\x1b[K');
  const m = s.manifest;
  const tokens = m.shards.reduce((n, sh) => n + sh.tokens, 0);
  console.log(`index ${m.fingerprint} written to ${opts.out}`);
  console.log(`  shards: ${m.shards.length} (${s.shardsBuilt} built, ${s.shardsReused} unchanged)`);
  console.log(
    `  records: ${m.records.toLocaleString('en-US')} in ${m.tasks.length} tasks; ${tokens.toLocaleString('en-US')} tokens`,
  );
  console.log(
    `  indexed ${formatBytes(s.jsonlBytes)} of JSONL in ${s.seconds.toFixed(2)} s (${(s.records / s.seconds).toFixed(0)} records/s)`,
  );
  if (s.published)
    console.log(
      `  published: ${s.published.uploaded} files uploaded (${formatBytes(s.published.bytes)}), ${s.published.skipped} already there, ${s.published.deleted} stale deleted`,
    );
  console.log(
    `  vocabulary: ${m.vocab.tokenizer} text ${m.vocab.textVocabSize}, audio at ${m.vocab.audioOffset} (${m.vocab.codebooks} × ${m.vocab.codebookSize}), audio pad ${m.vocab.audioPadId}, total ${m.vocab.totalSize}`,
  );
  console.log(
    `  codec: ${m.vocab.codec || 'unnamed'} at ${m.vocab.frameRate > 0 ? `${m.vocab.frameRate} Hz` : 'an unknown frame rate'}`,
  );
  if (s.skipped.length > 0) {
    console.log(
      `  skipped: ${s.skipped.length} files named like shards outside the layout (metadata/<domain>/<ug>/<split>/<dataset>/jsonl/*.jsonl[.gz]):`,
    );
    for (const f of s.skipped.slice(0, 50)) console.log(`    ${f.path}: ${f.why}`);
    if (s.skipped.length > 50) console.log(`    … and ${s.skipped.length - 50} more`);
  }
  if (m.quarantined > 0) {
    console.log(`  quarantined: ${m.quarantined} (see ${opts.out}/quarantine.jsonl)`);
    console.log(
      formatTable(
        ['reason', 'count'],
        Object.entries(m.quarantineByReason).map(([r, n]) => [r, n]),
      ).replace(/^/gm, '    '),
    );
  } else {
    console.log('  quarantined: 0');
  }
}
