import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { bearer, check, collect, corpusInfo, dataClient, healthClient, type DataClient } from './helpers/grpc.js';

const SPEC = { spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 1, maxBatches: 3 } };

/**
 * Bearer tokens, here from FLANSTREAM_SERVER_AUTH_TOKENS as a Kubernetes Secret would give them:
 * no token or a wrong one is UNAUTHENTICATED on both RPCs; either configured token works.
 */
describe('bearer-token authentication', () => {
  let server: RunningServer;
  let c: DataClient;
  beforeAll(async () => {
    const loaded = loadConfig(
      undefined,
      { 'index.dir': inject('sampleIndex'), 'server.port': '0', 'server.http_port': '-1' },
      { FLANSTREAM_SERVER_AUTH_TOKENS: 'first-token-0123,second-token-4567' },
    );
    server = await startServer(loaded);
    c = dataClient(`127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    c?.close();
    await server?.shutdown();
  });

  const refused: [string, grpc.Metadata][] = [
    ['no token', new grpc.Metadata()],
    ['a wrong token', bearer('first-token-0124')],
    ['a prefix of a token', bearer('first-token')],
    [
      'the token without "Bearer"',
      (() => {
        const md = new grpc.Metadata();
        md.set('authorization', 'first-token-0123');
        return md;
      })(),
    ],
  ];

  for (const [name, md] of refused) {
    it(`refuses ${name} with UNAUTHENTICATED on GetCorpusInfo and StreamBatches`, async () => {
      await expect(corpusInfo(c, md)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      const r = await collect(c, SPEC, { md });
      expect(r.batches).toHaveLength(0);
      expect(r.error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(r.error?.details).toMatch(/bearer token/);
    });
  }

  it('serves either configured token on both RPCs ("bearer" in any case)', async () => {
    expect((await corpusInfo(c, bearer('first-token-0123'))).tasks).toHaveLength(80);
    const md = new grpc.Metadata();
    md.set('authorization', 'bearer second-token-4567');
    const r = await collect(c, SPEC, { md });
    expect(r.error).toBeUndefined();
    expect(r.batches).toHaveLength(3);
    expect(r.end?.reason).toBe('max_batches');
  });

  it('leaves gRPC health open to probes that carry no token', async () => {
    const h = healthClient(`127.0.0.1:${server.port}`);
    try {
      expect(await check(h, 'flanstream.v1.DataService')).toBe('SERVING');
    } finally {
      h.close();
    }
  });
});
