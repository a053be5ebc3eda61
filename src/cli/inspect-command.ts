import { IndexReader } from '../index/index-reader.js';
import { formatTable, printable } from './format-table.js';
import { loadConfig } from '../config/load-config.js';
import { Contamination } from '../splits/contamination.js';
import { resolveHeldout, NO_HELDOUT } from '../splits/heldout.js';
import { InvalidArgumentError } from '../errors.js';
import { datasetRows, describeGuards, formatContamination, formatDatasets } from './contamination-report.js';

/**
 * The task table, the dataset table and length statistics of an index; with --heldout, the
 * train/eval split of a set and what its guards remove; with --contamination, per held-out task.
 */
export function inspectCommand(
  dir: string,
  opts: { heldout?: string; config?: string; json: boolean; contamination?: boolean },
): void {
  const reader = IndexReader.open(dir);
  const m = reader.manifest;
  let held = resolveHeldout(NO_HELDOUT, reader);
  if (opts.contamination && !opts.heldout)
    throw new InvalidArgumentError('--contamination', 'needs --heldout NAME (the set whose guards to report)');
  if (opts.heldout) {
    const { heldoutSets } = loadConfig(opts.config, {}, {});
    const spec = heldoutSets[opts.heldout];
    if (!spec)
      throw new InvalidArgumentError(
        '--heldout',
        `no held-out set named "${opts.heldout}" (known: ${Object.keys(heldoutSets).join(', ')})`,
      );
    held = resolveHeldout(spec, reader, opts.heldout, `--heldout ${opts.heldout}`);
  }
  const guard = held.guarded ? new Contamination(reader, held) : undefined;
  const removals = guard && (opts.contamination || opts.json) ? guard.report() : [];
  // Hours of audio from codec frames (windows applied); unknown without the codec's frame rate.
  const rate = m.vocab.frameRate;
  const hours = (frames: number): number | null => (rate > 0 ? frames / rate / 3600 : null);
  const fmtHours = (frames: number): string => (rate > 0 ? (frames / rate / 3600).toFixed(2) : '?');
  if (opts.json) {
    const datasets = [...reader.datasets.values()].map((d) => ({ name: d.name, tasks: Object.fromEntries(d.tasks) }));
    const tasks = m.tasks.map(({ runs: _runs, ...t }) => ({
      ...t,
      audioHours: hours(t.audioFrames),
      heldout: held.tasks.has(t.id),
    }));
    const codec = {
      name: m.vocab.codec,
      frameRate: rate,
      codebooks: m.vocab.codebooks,
      codebookSize: m.vocab.codebookSize,
    };
    console.log(
      JSON.stringify(
        {
          fingerprint: m.fingerprint,
          records: m.records,
          codec,
          tasks,
          datasets,
          quarantine: m.quarantineByReason,
          contamination: removals,
          guardCost: guard?.cost,
        },
        null,
        2,
      ),
    );
    return;
  }
  // Every line of the text report goes out through printable(): the report's own newlines stay,
  // anything a corpus put in a name or a text is escaped.
  const say = (text: string): void => console.log(text.split('\n').map(printable).join('\n'));
  const rows = m.tasks.map((t) => [
    t.domain,
    t.major,
    t.minor,
    t.ug === 'generation' ? 'G' : 'U',
    t.counts[0],
    t.counts[1],
    t.counts[2],
    t.textTokens,
    t.audioTokens,
    fmtHours(t.audioFrames),
    t.lengthPercentiles[0],
    t.lengthPercentiles[2],
    t.unseen ? 'yes' : '',
    held.tasks.has(t.id) ? 'held-out' : '',
  ]);
  say(
    formatTable(
      [
        'domain',
        'major',
        'minor',
        'U/G',
        'train',
        'dev',
        'test',
        'text tok',
        'audio tok',
        'audio h',
        'len p50',
        'len p99',
        'unseen',
        opts.heldout ?? '',
      ],
      rows,
    ),
  );
  say(`\n${formatDatasets(reader)}`);
  const sum = (f: (t: (typeof m.tasks)[number]) => number, pick: (id: number) => boolean): number =>
    m.tasks.filter((t) => pick(t.id)).reduce((n, t) => n + f(t), 0);
  const records = (t: (typeof m.tasks)[number]): number => t.counts[0] + t.counts[1] + t.counts[2];
  const tokens = (t: (typeof m.tasks)[number]): number => t.textTokens + t.audioTokens;
  say(
    `\n${m.tasks.length} tasks, ${reader.datasets.size} datasets (${datasetRows(reader).length} dataset × task pairs), ${m.records.toLocaleString('en-US')} records, ${m.shards.length} shards, index ${m.fingerprint}`,
  );
  const byDomain = [...new Set(m.tasks.map((t) => t.domain))].map(
    (d) =>
      `${d} ${fmtHours(
        sum(
          (t) => t.audioFrames,
          (id) => m.tasks[id]?.domain === d,
        ),
      )} h`,
  );
  say(
    `audio: ${byDomain.join(', ')} (codec ${m.vocab.codec || 'unnamed'}, ${rate > 0 ? `${rate} Hz` : 'frame rate unknown: give --frame-rate or codec.json'}, ${m.vocab.codebooks} × ${m.vocab.codebookSize})`,
  );
  say(`quarantined at index time: ${m.quarantined}${m.quarantined ? ' ' + JSON.stringify(m.quarantineByReason) : ''}`);
  if (opts.heldout) {
    const isHeld = (id: number): boolean => held.tasks.has(id);
    say(`\nheld-out set ${opts.heldout} (${held.fingerprint}):`);
    say(
      `  training:   ${m.tasks.length - held.tasks.size} tasks, ${sum(records, (id) => !isHeld(id)).toLocaleString('en-US')} records, ${sum(tokens, (id) => !isHeld(id)).toLocaleString('en-US')} tokens (before guards)`,
    );
    say(
      `  evaluation: ${held.tasks.size} tasks, ${sum(records, isHeld).toLocaleString('en-US')} records, ${sum(tokens, isHeld).toLocaleString('en-US')} tokens (plus held-out datasets' records of other tasks)`,
    );
    say(`  guards:     ${describeGuards(held)}`);
    if (guard && !opts.contamination) {
      let removed = 0;
      for (const t of m.tasks) {
        if (isHeld(t.id)) continue;
        for (const [shard, local] of t.runs[0] ?? [])
          for (const row of reader.list(shard, local, 0)) if (guard.excluded(shard, row)) removed++;
      }
      say(
        `  the guards remove ${removed.toLocaleString('en-US')} training records (--contamination shows which and why)`,
      );
    }
    if (guard && opts.contamination) say(`\n${formatContamination(guard, removals)}`);
  }
  reader.close();
}
