#!/usr/bin/env node
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { writeSampleCorpus } from './sample/sample-corpus.js';
import { SAMPLE_AUDIO_ROOT } from './sample/sample-release-shape.js';
import { FlanError, InvalidArgumentError, describeError } from './errors.js';
import { indexCommand } from './cli/index-command.js';
import { indexMergeCommand, indexPartCommand } from './cli/index-part-command.js';
import { parsePart } from './index/partition.js';
import { loadConfig } from './config/load-config.js';
import { s3Settings } from './config/core-settings.js';
import { inspectCommand } from './cli/inspect-command.js';
import { serveCommand } from './cli/serve-command.js';

const USAGE = `usage: flanstream <command> [options]

  sample-corpus <dir> [--records N] [--seed S]     write a synthetic Audio-FLAN corpus (80 tasks)
  index <corpus> --out <dir> [--tokenizer qwen3|<tokenizer.json>] [--workers N] [--config FILE]
        [--codec NAME] [--frame-rate HZ] [--codebook-size N] [--codebooks N]   (override audio_tokens/codec.json)
        [--audio-root PREFIX]…   strip PREFIX from absolute .scp paths (repeatable)
        [--part I/N | --merge [--wait SECONDS]]     partitioned build: part I of N (0 ≤ I < N), then merge
                                                    (--wait: until every part's record is there, up to SECONDS)
        (--out s3://bucket/prefix [--stage DIR]: build (a part, a merge) in DIR, then publish; serve --index s3://… reads it;
         the corpus may be s3://bucket/prefix too: read by listings and ranged GETs, never copied;
         --config FILE: its storage.s3 settings, else the standard AWS environment)
  inspect <index-dir> [--heldout NAME [--contamination]] [--config FILE] [--json]
  serve [--config FILE] [--index DIR] [--port N] [--host H] [--http-port N] [--workers N] [--set key=value]… [--print-config]
`;

/** The tokenizer's native encoder already uses every core, so more workers than half the cores only add tokenizer copies. */
function defaultWorkers(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2));
}

function positiveInt(flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(flag, `expected a non-negative integer, got "${v}"`);
  return n;
}

function positiveNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(flag, `expected a positive number, got "${v}"`);
  return n;
}

/** parseArgs reads "--http-port -1" as two flags; glue negative numbers to their option. */
function glueNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    const prev = out[out.length - 1];
    if (/^-\d/.test(a) && prev?.startsWith('--') && !prev.includes('=')) out[out.length - 1] = `${prev}=${a}`;
    else out.push(a);
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = glueNegativeValues(argv);
  switch (command) {
    case 'sample-corpus': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { records: { type: 'string' }, seed: { type: 'string' } },
      });
      const dir = positionals[0];
      if (!dir) throw new InvalidArgumentError('dir', 'sample-corpus needs a target directory');
      const s = await writeSampleCorpus(dir, {
        records: positiveInt('--records', values.records, 20000),
        seed: positiveInt('--seed', values.seed, 0),
      });
      console.log(
        `sample corpus written to ${dir}: ${s.records} records in ${s.tasks.length} tasks ${JSON.stringify(s.byDomain)}, ${s.clips} clips (${s.sharedClips} shared by several tasks)`,
      );
      // Its .scp files hold absolute paths, as the release's do: without --audio-root, index would
      // quarantine every record with audio, so the exact next command is printed.
      const next = [
        'npx',
        'flanstream',
        'index',
        dir,
        '--out',
        `${dir.replace(/\/+$/, '')}-index`,
        '--audio-root',
        SAMPLE_AUDIO_ROOT,
      ];
      console.log(`next: ${next.map(shellWord).join(' ')}`);
      return;
    }
    case 'index': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          out: { type: 'string' },
          tokenizer: { type: 'string', default: 'qwen3' },
          workers: { type: 'string' },
          codec: { type: 'string' },
          'frame-rate': { type: 'string' },
          'codebook-size': { type: 'string' },
          codebooks: { type: 'string' },
          'audio-root': { type: 'string', multiple: true },
          part: { type: 'string' },
          merge: { type: 'boolean', default: false },
          stage: { type: 'string' },
          config: { type: 'string' },
          wait: { type: 'string' },
        },
      });
      const corpus = positionals[0];
      if (!corpus) throw new InvalidArgumentError('corpus', 'index needs a corpus (a directory or s3://bucket/prefix)');
      if (!values.out) throw new InvalidArgumentError('--out', 'index needs --out <index-dir>');
      const size = positiveNumber('--codebook-size', values['codebook-size']);
      const codebooks = positiveNumber('--codebooks', values.codebooks);
      if (size !== undefined && !Number.isInteger(size))
        throw new InvalidArgumentError('--codebook-size', `expected an integer, got "${values['codebook-size']}"`);
      if (codebooks !== undefined && !Number.isInteger(codebooks))
        throw new InvalidArgumentError('--codebooks', `expected an integer, got "${values.codebooks}"`);
      const common = {
        out: values.out,
        tokenizer: values.tokenizer,
        workers: positiveInt('--workers', values.workers, defaultWorkers()),
        codebookSize: size,
        codec: { name: values.codec, frameRate: positiveNumber('--frame-rate', values['frame-rate']), codebooks },
        audioRoots: values['audio-root'] ?? [],
        // storage.s3 of a config file, for an s3:// corpus or --out; without --config the standard AWS environment.
        ...(values.config ? { s3: s3Settings(loadConfig(values.config, {}).config.storage.s3) } : {}),
      };
      if (values.wait !== undefined && !values.merge)
        throw new InvalidArgumentError('--wait', '--wait is for --merge (wait for the parts)');
      if (values.part !== undefined && values.merge)
        throw new InvalidArgumentError(
          '--part',
          '--part and --merge are separate steps: run each part, then --merge once',
        );
      if (values.part !== undefined)
        await indexPartCommand(corpus, { ...common, part: parsePart(values.part), stage: values.stage });
      else if (values.merge)
        await indexMergeCommand(corpus, {
          ...common,
          stage: values.stage,
          waitSeconds: positiveNumber('--wait', values.wait) ?? 0,
        });
      else await indexCommand(corpus, { ...common, stage: values.stage });
      return;
    }
    case 'inspect': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          heldout: { type: 'string' },
          config: { type: 'string' },
          json: { type: 'boolean', default: false },
          contamination: { type: 'boolean', default: false },
        },
      });
      const dir = positionals[0];
      if (!dir) throw new InvalidArgumentError('index-dir', 'inspect needs an index directory');
      inspectCommand(dir, {
        heldout: values.heldout,
        config: values.config,
        json: values.json,
        contamination: values.contamination,
      });
      return;
    }
    case 'serve': {
      const { values } = parseArgs({
        args: rest,
        options: {
          config: { type: 'string' },
          index: { type: 'string' },
          port: { type: 'string' },
          host: { type: 'string' },
          'http-port': { type: 'string' },
          workers: { type: 'string' },
          set: { type: 'string', multiple: true },
          'print-config': { type: 'boolean', default: false },
        },
      });
      const overrides: Record<string, string> = {};
      if (values.index) overrides['index.dir'] = values.index;
      if (values.port) overrides['server.port'] = values.port;
      if (values.host) overrides['server.host'] = values.host;
      if (values['http-port']) overrides['server.http_port'] = values['http-port'];
      if (values.workers) overrides['server.workers'] = values.workers;
      for (const kv of values.set ?? []) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new InvalidArgumentError('--set', `expected key=value, got "${kv}"`);
        overrides[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      await serveCommand({ config: values.config, printConfig: values['print-config'], overrides });
      return;
    }
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return;
    default:
      throw new InvalidArgumentError('command', `unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const known =
    err instanceof FlanError ||
    (err instanceof Error &&
      err.name === 'TypeError' &&
      'code' in err &&
      String(err.code).startsWith('ERR_PARSE_ARGS'));
  process.stderr.write(`flanstream: ${describeError(err)}\n`);
  if (!known && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(known ? 2 : 1);
});

/** A word as a POSIX shell reads it back: quoted only when it has to be. */
function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}
