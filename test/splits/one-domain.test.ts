import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { writeSampleCorpus } from '../../src/sample/sample-corpus.js';
import { buildIndex } from '../../src/index/build-index.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { batchesOf, collect } from '../helpers/grpc-stream-calls.js';
import { SAMPLE_AUDIO_ROOT } from '../../src/sample/sample-release-shape.js';
import { CLI } from '../helpers/cli.js';

/**
 * The release is published per domain: a corpus holding only its speech part must serve. Named
 * sets and mixtures that name music or audio tasks are reported unavailable, using one is
 * FAILED_PRECONDITION naming what is missing, and start-up never fails because of them.
 */
const ROOT = join(import.meta.dirname, '..', '..');
let dir: string;
let index: string;
let server: TestServer;
let client: FlanStreamClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flanstream-speech-only-'));
  const corpus = join(dir, 'corpus');
  await writeSampleCorpus(corpus, { records: 600, seed: 4 });
  for (const domain of ['music', 'audio']) {
    for (const top of ['metadata', 'scp_files']) rmSync(join(corpus, top, domain), { recursive: true, force: true });
  }
  index = join(dir, 'index');
  await buildIndex({ corpus, out: index, workers: 1, audioRoots: [SAMPLE_AUDIO_ROOT] });
  server = await startTestServer(index);
  client = new FlanStreamClient(server.target);
}, 300_000);
afterAll(async () => {
  client?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a speech-only corpus', () => {
  it('starts, and GetCorpusInfo reports the sets and mixtures naming absent tasks as unavailable, with what is missing', async () => {
    const info = await client.corpusInfo();
    expect(new Set(info.tasks.map((t) => t.domain))).toEqual(new Set(['speech']));
    const sets = Object.fromEntries(info.heldoutSets.map((h) => [h.name, h]));
    expect(sets['loco-audio-caption']).toMatchObject({
      available: false,
      missing: ['audio/Audio Caption'],
      fingerprint: '',
      tasks: [],
    });
    expect(sets['loco-music-caption']).toMatchObject({ available: false, missing: ['music/Music Caption'] });
    expect(sets['music-reasoning']).toMatchObject({
      available: false,
      missing: ['music/Single Music Reasoning', 'music/Multiple Music Reasoning'],
    });
    for (const name of ['loco-speech-caption', 'unseen-flag', 'none']) {
      expect(sets[name]!.available, name).toBe(true);
      expect(sets[name]!.missing).toEqual([]);
      expect(sets[name]!.fingerprint).not.toBe('');
    }
    expect(sets['loco-speech-caption']!.tasks.length).toBeGreaterThan(0);
    expect(info.unavailableMixtures).toEqual([{ name: 'balanced-domains', missing: ['audio', 'music'] }]);
    expect(info.mixtures).not.toContain('balanced-domains');
    expect(info.mixtures).toContain('natural');
  });

  it('a stream naming an unavailable set or mixture fails with FAILED_PRECONDITION naming what is missing; others serve', async () => {
    const spec = { split: 'train', batchSize: 2, seqLen: 4096, maxBatches: 2 };
    const set = await collect(client, [{ spec: { ...spec, heldout: { name: 'music-reasoning' } } }]);
    expect(set.error?.code).toBe(Status.FAILED_PRECONDITION);
    expect(set.error?.message).toContain('"music-reasoning" is unavailable');
    expect(set.error?.message).toContain('music/Single Music Reasoning, music/Multiple Music Reasoning');
    const heldout = await collect(client, [
      { spec: { ...spec, split: 'heldout', heldout: { name: 'loco-audio-caption' } } },
    ]);
    expect(heldout.error?.code).toBe(Status.FAILED_PRECONDITION);
    expect(heldout.error?.message).toContain('audio/Audio Caption');
    const mix = await collect(client, [{ spec: { ...spec, mixture: { name: 'balanced-domains' } } }]);
    expect(mix.error?.code).toBe(Status.FAILED_PRECONDITION);
    expect(mix.error?.message).toContain(
      'mixture "balanced-domains" is unavailable on this index: it weights audio, music',
    );
    // The named mixture's weights replaced by explicit ones: nothing missing is used.
    expect(
      await batchesOf(client, { ...spec, mixture: { name: 'balanced-domains', weights: { speech: 1 } } }, 2),
    ).toHaveLength(2);
    expect(
      await batchesOf(
        client,
        { ...spec, heldout: { name: 'loco-speech-caption' }, mixture: { name: 'temperature-3' } },
        2,
      ),
    ).toHaveLength(2);
    expect(await batchesOf(client, spec, 2)).toHaveLength(2);
    // An inline set naming an absent task stays a bad request.
    const inline = await collect(client, [{ spec: { ...spec, heldout: { inline: true, selectors: ['music'] } } }]);
    expect(inline.error?.code).toBe(Status.INVALID_ARGUMENT);
  });

  it('starts with an unavailable default held-out set; streams that name no set fail naming it, streams naming one serve', async () => {
    const other = await startTestServer(index, { default_heldout: 'loco-audio-caption' });
    const c = new FlanStreamClient(other.target);
    try {
      const info = await c.corpusInfo();
      expect(info.defaultHeldout).toBe('loco-audio-caption');
      const spec = { split: 'train', batchSize: 2, seqLen: 4096, maxBatches: 1 };
      const r = await collect(c, [{ spec }]);
      expect(r.error?.code).toBe(Status.FAILED_PRECONDITION);
      expect(r.error?.message).toContain(
        'the default held-out set "loco-audio-caption" (config default_heldout) is unavailable',
      );
      expect(await batchesOf(c, { ...spec, heldout: { name: 'unseen-flag' } }, 1)).toHaveLength(1);
    } finally {
      c.close();
      await other.stop();
    }
  });

  it('`flanstream serve` logs each unavailable set and mixture at start-up and serves', async () => {
    const proc = spawn(process.execPath, [CLI, 'serve', '--index', index, '--port', '0', '--http-port', '-1'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const lines = createInterface({ input: proc.stdout });
      await new Promise<void>((resolve, reject) => {
        lines.on('line', (l) => {
          if ((JSON.parse(l) as { event?: string }).event === 'listening') resolve();
        });
        proc.on('exit', (code) => reject(new Error(`serve exited with ${String(code)}:\n${stderr}`)));
      });
      // The warnings follow the listening line on stderr; give the process a moment to flush.
      for (let i = 0; i < 100 && !stderr.includes('mixture "balanced-domains"'); i++)
        await new Promise((r) => setTimeout(r, 20));
      const warnings = stderr.split('\n').filter((l) => l.startsWith('warning: '));
      expect(warnings).toEqual([
        'warning: held-out set "loco-audio-caption" is unavailable on this index: it names audio/Audio Caption, which the index does not hold (using it fails with FAILED_PRECONDITION)',
        'warning: held-out set "loco-music-caption" is unavailable on this index: it names music/Music Caption, which the index does not hold (using it fails with FAILED_PRECONDITION)',
        'warning: held-out set "music-reasoning" is unavailable on this index: it names music/Single Music Reasoning, music/Multiple Music Reasoning, which the index does not hold (using it fails with FAILED_PRECONDITION)',
        'warning: mixture "balanced-domains" is unavailable on this index: it names audio, music, which the index does not hold (using it fails with FAILED_PRECONDITION)',
      ]);
    } finally {
      proc.kill('SIGKILL');
    }
  }, 120_000);
});
