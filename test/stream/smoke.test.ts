import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
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
    const info = await new Promise<{ tasks: unknown[] }>((resolve, reject) =>
      (ts.client.getCorpusInfo as unknown as (r: object, cb: (e: Error | null, v: { tasks: unknown[] }) => void) => void)({}, (e, v) => (e ? reject(e) : resolve(v))),
    );
    expect(info.tasks).toHaveLength(80);
  });
});
