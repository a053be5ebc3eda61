import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { activeStreams, batchesOf, collect, expectStatus } from '../helpers/grpc-stream-calls.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';

const base = { split: 'train', batchSize: 2, seqLen: 2048, packing: 'packed' };

/** Invalid specs name their field; foreign, tampered or mismatched tokens are refused; the server survives it all. */
describe('errors', () => {
  let ts: TestServer;
  let client: FlanStreamClient;
  let dir: string;
  let foreignToken: Uint8Array;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
    client = new FlanStreamClient(ts.target);
    // A second, smaller index: its tokens must not resume here.
    dir = mkdtempSync(join(tmpdir(), 'flanstream-other-'));
    await writeSampleCorpus(join(dir, 'corpus'), { records: 1000, seed: 1 });
    await buildIndex({
      corpus: join(dir, 'corpus'),
      out: join(dir, 'index'),
      workers: 1,
      audioRoots: [SAMPLE_AUDIO_ROOT],
    });
    const other = await startTestServer(join(dir, 'index'));
    const oc = new FlanStreamClient(other.target);
    foreignToken = (await batchesOf(oc, base, 1))[0]!.resumeToken;
    oc.close();
    await other.stop();
  });
  afterAll(async () => {
    client?.close();
    await ts?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const invalid: [string, object, string][] = [
    ['batch_size 0', { ...base, batchSize: 0 }, 'batch_size'],
    ['seq_len huge', { ...base, seqLen: 10_000_000 }, 'seq_len'],
    ['seq_len tiny', { ...base, seqLen: 1 }, 'seq_len'],
    ['batch_size × seq_len over the limit', { ...base, batchSize: 4096, seqLen: 4096 }, 'batch_size'],
    ['unknown packing', { ...base, packing: 'zigzag' }, 'packing'],
    ['unknown split', { ...base, split: 'validation' }, 'split'],
    ['rank ≥ world_size', { ...base, rank: 2, worldSize: 2 }, 'rank'],
    ['world_size over the limit', { ...base, worldSize: 10_000_000 }, 'world_size'],
    ['unknown overlong policy', { ...base, overlong: 'chop' }, 'overlong'],
    ['examples packing on train', { ...base, packing: 'examples' }, 'packing'],
    ['a mixture on an evaluation split', { ...base, split: 'test', mixture: { weights: { speech: 1 } } }, 'mixture'],
    [
      'unknown mixture selector',
      { ...base, mixture: { weights: { 'speech/Nope': 1 } } },
      'mixture.weights["speech/Nope"]',
    ],
    [
      'overlapping selectors',
      { ...base, mixture: { weights: { speech: 1, 'speech/Speech Recognition': 1 } } },
      'mixture.weights',
    ],
    ['negative weight', { ...base, mixture: { weights: { speech: -1 } } }, 'mixture.weights["speech"]'],
    [
      'weight of 1e308 (weight × size overflowed into INTERNAL)',
      { ...base, mixture: { weights: { speech: 1e308, music: 1 } } },
      'mixture.weights["speech"]',
    ],
    [
      'temperature so small that task sizes overflow',
      { ...base, mixture: { within: 'temperature', temperature: 1e-300 } },
      'mixture.temperature',
    ],
    ['all weights zero', { ...base, mixture: { weights: { speech: 0 } } }, 'mixture.weights'],
    [
      'weights on held-out tasks only',
      { ...base, mixture: { weights: { 'music/Music Caption': 1 } }, heldout: { name: 'loco-music-caption' } },
      'mixture.weights["music/Music Caption"]',
    ],
    ['unknown mixture name', { ...base, mixture: { name: 'nope' } }, 'mixture.name'],
    ['unknown within', { ...base, mixture: { weights: { speech: 1 }, within: 'bogus' } }, 'mixture.within'],
    ['negative temperature', { ...base, mixture: { within: 'temperature', temperature: -2 } }, 'mixture.temperature'],
    ['unknown held-out set name', { ...base, heldout: { name: 'nope' } }, 'heldout.name'],
    [
      'unknown held-out selector',
      { ...base, heldout: { selectors: ['speech/Nope'], inline: true } },
      'heldout.selectors',
    ],
    [
      'unknown held-out scope',
      { ...base, heldout: { selectors: ['music/Music Caption'], inline: true, scope: 'most' } },
      'heldout.scope',
    ],
  ];
  for (const [name, spec, field] of invalid) {
    it(`INVALID_ARGUMENT naming ${field}: ${name}`, async () => {
      expectStatus(await collect(client, [{ spec }]), Status.INVALID_ARGUMENT, field);
    });
  }

  it('INVALID_ARGUMENT when the first message is a mixture update, empty, or missing', async () => {
    expectStatus(
      await collect(client, [{ mixtureUpdate: { weights: { speech: 1 }, applyAtStep: 0 } }]),
      Status.INVALID_ARGUMENT,
      'spec',
    );
    expectStatus(await collect(client, [{}]), Status.INVALID_ARGUMENT, 'spec');
    const call = client.streamBatches();
    const error = new Promise<{ code: number }>((resolve) => call.on('error', resolve));
    call.end();
    expect((await error).code).toBe(Status.INVALID_ARGUMENT);
  });

  it('INVALID_ARGUMENT for bad later messages: a second spec, a past or malformed update', async () => {
    expectStatus(await collect(client, [{ spec: base }, { spec: base }]), Status.INVALID_ARGUMENT, 'request');
    expectStatus(
      await collect(client, [{ spec: base }, { mixtureUpdate: { weights: { speech: 1 }, applyAtStep: 0 } }]),
      Status.INVALID_ARGUMENT,
      'mixture_update.apply_at_step',
    );
    expectStatus(
      await collect(client, [{ spec: base }, { mixtureUpdate: { weights: { nope: 1 }, applyAtStep: 50 } }]),
      Status.INVALID_ARGUMENT,
      'mixture_update.weights["nope"]',
    );
    expectStatus(
      await collect(client, [{ spec: base, updates: [{ weights: { speech: -1 }, applyAtStep: 3 }] }]),
      Status.INVALID_ARGUMENT,
      'mixture_update.weights["speech"]',
    );
  });

  it('INVALID_ARGUMENT for a mixture update on an evaluation stream', async () => {
    const test = { ...base, split: 'test' };
    expectStatus(
      await collect(client, [{ spec: test, updates: [{ weights: { speech: 1 }, applyAtStep: 3 }] }]),
      Status.INVALID_ARGUMENT,
      'mixture_update',
    );
    expectStatus(
      await collect(client, [{ spec: test }, { mixtureUpdate: { weights: { speech: 1 }, applyAtStep: 50 } }]),
      Status.INVALID_ARGUMENT,
      'mixture_update',
    );
  });

  it('status messages reach clients as plain ASCII, never percent-encoded', async () => {
    // grpc-js percent-encodes non-ASCII bytes of grpc-message: "×" arrived as "%C3%97".
    const r = await collect(client, [{ spec: { ...base, batchSize: 4096, seqLen: 4096 } }]);
    expectStatus(r, Status.INVALID_ARGUMENT, 'batch_size');
    expect(r.error!.details).toContain('batch_size x seq_len');
    const foreign = await collect(client, [{ resume: { token: foreignToken } }]);
    expect(foreign.error!.details).toMatch(/from index [0-9a-f]{12}\.\.\., this server serves/);
    for (const d of [r.error!.details, foreign.error!.details]) expect(d).toMatch(/^[\x20-\x7e]*$/);
  });

  it('FAILED_PRECONDITION for a token from another index', async () => {
    const r = await collect(client, [{ resume: { token: foreignToken } }]);
    expectStatus(r, Status.FAILED_PRECONDITION);
    expect(r.error!.metadata['flanstream-reason']).toBe('index_mismatch');
  });

  it('INVALID_ARGUMENT for tampered, truncated, empty or foreign-format tokens', async () => {
    const token = Buffer.from((await batchesOf(client, base, 1))[0]!.resumeToken);
    const flips = [4, 10, 20, Math.floor(token.length / 2), token.length - 1];
    const bad = [
      ...flips.map((at) => Buffer.from(token).fill(token[at]! ^ 0x5a, at, at + 1)),
      token.subarray(0, token.length - 1),
      token.subarray(0, 20),
      token.subarray(0, 2),
      Buffer.alloc(0),
      Buffer.from('hello, world: certainly not a token'),
      Buffer.concat([token, Buffer.from([0])]),
    ];
    for (const t of bad)
      expectStatus(await collect(client, [{ resume: { token: t } }]), Status.INVALID_ARGUMENT, 'resume.token');
    expect((await collect(client, [{ resume: { token, maxBatches: 1 } }])).batches).toHaveLength(1);
  });

  it('FAILED_PRECONDITION for a token resumed under a different held-out set', async () => {
    const token = (await batchesOf(client, { ...base, heldout: { name: 'loco-speech-caption' } }, 1))[0]!.resumeToken;
    for (const heldout of [
      { name: 'none' },
      { name: 'unseen-flag' },
      { selectors: ['speech/Speech Caption'], inline: true },
    ]) {
      const r = await collect(client, [{ resume: { token, heldout } }]);
      expectStatus(r, Status.FAILED_PRECONDITION);
      expect(r.error!.metadata['flanstream-reason'], JSON.stringify(heldout)).toBe('heldout_mismatch');
    }
    const same = await collect(client, [
      { resume: { token, heldout: { name: 'loco-speech-caption' }, maxBatches: 1 } },
    ]);
    expect(same.error).toBeUndefined();
    expect(same.batches).toHaveLength(1);
  });

  it('INVALID_ARGUMENT for a resume at a rank outside its world size', async () => {
    const token = (await batchesOf(client, { ...base, worldSize: 2 }, 1))[0]!.resumeToken;
    expectStatus(await collect(client, [{ resume: { token, rank: 2 } }]), Status.INVALID_ARGUMENT, 'rank');
    expectStatus(
      await collect(client, [{ resume: { token, rank: 3, worldSize: 3 } }]),
      Status.INVALID_ARGUMENT,
      'rank',
    );
  });

  it('keeps serving after all of the above, with no stream left open', async () => {
    expect(await batchesOf(client, base, 3)).toHaveLength(3);
    await expect.poll(() => activeStreams(ts), { timeout: 5000 }).toBe(0);
  });
});
