import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataServiceDefinition, loadDefinition } from '../../src/server/proto.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { bearer, collect, dataClient, scrape, sleep, sumOf } from './helpers/grpc.js';

const SCRIPT = fileURLToPath(new URL('../helpers/h2_call_ends.py', import.meta.url));
const MODES = ['rst-no-error', 'rst-cancel', 'rst-internal', 'close', 'goaway-close', 'goaway-error'] as const;
const MAX_STREAMS = 4;
const TOKEN = 'holder-token-0123';
const SPEC = { spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 3 } };
const REQUEST_HEX = (dataServiceDefinition(loadDefinition()).StreamBatches!.requestSerialize(SPEC) as Buffer).toString(
  'hex',
);

/**
 * Ends 2 × max_streams calls one way from a raw HTTP/2 client (test/helpers/h2_call_ends.py,
 * python3-h2) while the connection stays open as long as the mode allows; resolves with what
 * the client saw, and a function that closes the client.
 */
async function endCalls(
  port: number,
  mode: string,
  token: string,
): Promise<{ admitted: number; refused: number; done: () => Promise<void> }> {
  const child = spawn(
    '/usr/bin/python3',
    [SCRIPT, '127.0.0.1', String(port), mode, String(2 * MAX_STREAMS), REQUEST_HEX, token],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = once(child, 'exit');
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) =>
      reject(new Error(`h2_call_ends.py ${mode} exited with ${code} before ending its streams`)),
    );
  });
  const seen = JSON.parse(line) as { admitted: number; refused: number };
  return {
    ...seen,
    done: async () => {
      child.stdin.end();
      await exited;
    },
  };
}

async function activeStreams(httpPort: number): Promise<{ active: number; unsent: number; plans: number }> {
  const m = await scrape(httpPort);
  return {
    active: sumOf(m, 'flanstream_active_streams'),
    unsent: sumOf(m, 'flanstream_unsent_bytes'),
    plans: sumOf(m, 'flanstream_plan_bytes'),
  };
}

/**
 * However a StreamBatches call ends, from the client's side, its slot of max_streams, its
 * unsent bytes and its planning memory (server.plan_budget_bytes) come back: an RST_STREAM with any code (NO_ERROR included, which Node's HTTP/2
 * treats as a clean end of the client's side and never closes on its own), the connection
 * closed, GOAWAY. Each way fills every slot first, and after it a new stream is served.
 */
describe.each<{ name: string; overrides: Record<string, string>; token: string }>([
  { name: 'on the server thread', overrides: {}, token: '' },
  {
    name: 'with --workers 2 and auth on',
    overrides: { 'server.workers': '2', 'server.auth_tokens': TOKEN },
    token: TOKEN,
  },
])('every way a call ends frees its slot ($name)', ({ overrides, token }) => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer(inject('sampleIndex'), { 'server.max_streams': String(MAX_STREAMS), ...overrides });
  }, 60_000);
  afterAll(async () => {
    await ts?.stop();
  });

  it.each(MODES)(
    '%s',
    async (mode) => {
      const r = await endCalls(ts.server.port, mode, token);
      try {
        // Every slot was taken by this client, the rest refused.
        expect(r.admitted).toBe(MAX_STREAMS);
        expect(r.refused).toBe(MAX_STREAMS);
        let now = await activeStreams(ts.server.httpPort);
        for (let i = 0; i < 150 && (now.active !== 0 || now.unsent !== 0 || now.plans !== 0); i++) {
          await sleep(20);
          now = await activeStreams(ts.server.httpPort);
        }
        expect(now, `slots, unsent bytes and planning memory after ${mode}`).toEqual({
          active: 0,
          unsent: 0,
          plans: 0,
        });
        const c = dataClient(ts.target);
        try {
          const fresh = await collect(c, { spec: { ...SPEC.spec, maxBatches: 2 } }, token ? { md: bearer(token) } : {});
          expect(fresh.error).toBeUndefined();
          expect(fresh.batches).toHaveLength(2);
        } finally {
          c.close();
        }
      } finally {
        await r.done();
      }
    },
    30_000,
  );
});
