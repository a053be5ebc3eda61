import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CorpusInfo__Output } from '../../proto/generated/flanstream/v1/CorpusInfo.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

describe('server smoke', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'));
  });
  afterAll(async () => {
    await ts.stop();
  });
  it('answers GetCorpusInfo with the 80 tasks', async () => {
    const info = await new Promise<CorpusInfo__Output>((resolve, reject) =>
      ts.client.getCorpusInfo({}, (e, v) => (e || !v ? reject(e ?? new Error('no answer')) : resolve(v))),
    );
    expect(info.tasks).toHaveLength(80);
  });
});
