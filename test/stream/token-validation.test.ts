import { status as Status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FlanStreamClient } from '../../clients/ts/service-client.js';
import { Permutation } from '../../src/mix/permutation.js';
import type { DataServiceCore } from '../../src/stream/data-service-core.js';
import { loadConfig } from '../../src/config/load-config.js';
import { digests } from '../helpers/batch-digests.js';
import { decodeToken, encodeToken, type TokenPayload } from '../../src/stream/resume-token.js';
import { specHash, type StreamSpec } from '../../src/stream/stream-spec.js';
import { check, healthClient, type HealthClient } from '../ops/helpers/grpc.js';
import { spawnServer, type ChildServer } from '../reliability/procs.js';
import { openCore, take, trainSpec } from '../helpers/core-streams.js';
import { collect, expectStatus, type Collected } from '../helpers/grpc-stream-calls.js';

type State = Record<string, unknown> & {
  walker: { cursors: number[]; epochs: number[] };
  sampler: { counts: number[]; drawn: number };
  pool: number[];
  stats: Record<string, unknown>;
  pending: unknown[];
};
/**
 * A seed whose permutation of task t (size n, this epoch) maps n, by cycle walking, only to values
 * at or past n: `Permutation.at(n)` would never return. Found by following the walk through the
 * Feistel rounds for at most the whole domain.
 */
function endlessSeed(n: number, t: number, epoch: number): number {
  let bits = 2;
  while (2 ** bits < n) bits += 2;
  for (let seed = 1; seed < 100_000; seed++) {
    const p = new Permutation(n, seed, t, epoch) as unknown as { round(x: number): number };
    let x = n;
    let k = 0;
    do x = p.round(x);
    while (x >= n && ++k <= 2 ** bits);
    if (x >= n) return seed;
  }
  throw new Error(`no seed traps task ${t} of size ${n}`);
}

type Payload = TokenPayload<State> & Record<string, unknown>;

/** Answers within this bound count as prompt; a server stuck in a loop never answers at all. */
const BOUND_MS = 15_000;

/**
 * Issue 12.1: every field of a decoded token is checked against the index and the spec before
 * use. A walker cursor at its permutation's size once sent Permutation.at into an endless cycle
 * walk: health, metrics and every stream stopped and SIGTERM was ignored. The server runs in its
 * own process so such a hang fails the test instead of freezing it; each forgery must be refused
 * promptly with INVALID_ARGUMENT naming the field, and health must stay SERVING.
 */
describe('resume token validation', () => {
  let core: DataServiceCore;
  let server: ChildServer;
  let client: FlanStreamClient;
  let health: HealthClient;
  let train: Payload;
  let sizes: number[];
  let live: number;
  let heldTask: number;
  beforeAll(async () => {
    const index = inject('sampleIndex');
    core = await openCore(index);
    server = await spawnServer(index);
    client = new FlanStreamClient(server.target);
    health = healthClient(server.target);
    const { batches } = take(core.open({ spec: trainSpec({ batchSize: 2, seqLen: 2048 }) }), 2);
    train = decodeToken(batches[1]!.resumeToken, core.catalog.reader.fingerprint) as Payload;
    const held = core.catalog.named.heldout(undefined).tasks;
    sizes = core.catalog.reader.tasks.map((t) => (held.has(t.id) ? 0 : core.catalog.table(0).size(t.id)));
    live = sizes.findIndex((n) => n > 1);
    heldTask = sizes.findIndex((n) => n === 0);
    expect(live).toBeGreaterThanOrEqual(0);
    expect(heldTask).toBeGreaterThanOrEqual(0);
  });
  afterAll(async () => {
    client?.close();
    health?.close();
    await server?.kill();
    core?.catalog.reader.close();
  });

  function forge(edit: (q: Payload) => void): Uint8Array {
    const q = structuredClone(train);
    edit(q);
    (q as { specHash: string }).specHash = specHash(q.spec as StreamSpec);
    return encodeToken(q);
  }

  const mostDrawn = (q: Payload): number => {
    const n = q.state.stats.examples as number[];
    return n.indexOf(Math.max(...n));
  };

  async function resume(token: Uint8Array): Promise<Collected | 'no answer'> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'no answer'>((resolve) => (timer = setTimeout(() => resolve('no answer'), BOUND_MS)));
    const r = await Promise.race([collect(client, [{ resume: { token, maxBatches: 2 } }]), late]);
    clearTimeout(timer);
    return r;
  }

  const cursor = (i: number): string => `resume.token.state.walker.cursors[${i}]`;
  const cases: [string, (q: Payload) => void, () => string][] = [
    [
      'every walker cursor at its task size',
      (q) => sizes.forEach((n, t) => (q.state.walker.cursors[t] = n)),
      () => cursor(sizes.findIndex((n) => n > 0)),
    ],
    // The forgery that hung the server: a seed under which the most drawn task's cycle walk from
    // its size never comes back below it, and that task's cursor at its size.
    [
      'a walker cursor at the size of the most drawn task (the endless cycle walk)',
      (q) => {
        const t = mostDrawn(q);
        (q.spec as { seed: number }).seed = endlessSeed(sizes[t]!, t, q.state.walker.epochs[t]!);
        q.state.walker.cursors[t] = sizes[t]!;
      },
      () => cursor(mostDrawn(train)),
    ],
    ['a walker cursor at size + 1', (q) => (q.state.walker.cursors[live] = sizes[live]! + 1), () => cursor(live)],
    ['a walker cursor of 2^53', (q) => (q.state.walker.cursors[live] = 2 ** 53), () => cursor(live)],
    ['a walker cursor of NaN', (q) => (q.state.walker.cursors[live] = NaN), () => cursor(live)],
    ['a walker cursor of -1', (q) => (q.state.walker.cursors[live] = -1), () => cursor(live)],
    [
      'an epoch for a task the stream never walks',
      (q) => (q.state.walker.epochs[heldTask] = 1),
      () => `resume.token.state.walker.epochs[${heldTask}]`,
    ],
    [
      'a million walker cursors',
      (q) => (q.state.walker.cursors = new Array<number>(1_000_000).fill(0)),
      () => 'resume.token.state.walker.cursors',
    ],
    [
      'a pool larger than the window',
      (q) => ((q.spec as { window: number }).window = 2),
      () => 'resume.token.state.pool',
    ],
    [
      'a pool entry naming a held-out task',
      (q) => (q.state.pool = [1, heldTask, 0]),
      () => 'resume.token.state.pool[1]',
    ],
    [
      'a pool entry naming the record at the task size',
      (q) => (q.state.pool = [1, live, sizes[live]!]),
      () => 'resume.token.state.pool[2]',
    ],
    [
      'a pool unit with more turns than max_turns',
      (q) => (q.state.pool = [99, live, 0]),
      () => 'resume.token.state.pool[0]',
    ],
    ['sampler draws that do not add up', (q) => (q.state.sampler.drawn += 1), () => 'resume.token.state.sampler.drawn'],
    [
      'sampler counts of the wrong length',
      (q) => q.state.sampler.counts.push(0),
      () => 'resume.token.state.sampler.counts',
    ],
    [
      'a stats vector of the wrong length',
      (q) => (q.state.stats.examples as number[]).pop(),
      () => 'resume.token.state.stats.examples',
    ],
    ['negative padding', (q) => (q.state.stats.padding = -1), () => 'resume.token.state.stats.padding'],
    [
      'a pending update for a step already built',
      (q) => (q.state.pending = [{ applyAtStep: q.step - 1, mixture: q.state.mixture }]),
      () => 'resume.token.state.pending[0].applyAtStep',
    ],
    [
      '65 pending updates',
      (q) =>
        (q.state.pending = Array.from({ length: 65 }, (_, k) => ({
          applyAtStep: q.step + k,
          mixture: q.state.mixture,
        }))),
      () => 'resume.token.state.pending',
    ],
    [
      'a pending update with weights of 1e308',
      (q) =>
        (q.state.pending = [
          { applyAtStep: q.step + 1, mixture: { ...(q.state.mixture as object), weights: { speech: 1e308 } } },
        ]),
      () => 'resume.token.state.pending[0].mixture.weights["speech"]',
    ],
    ['a state section this server does not make', (q) => (q.state.extra = 1), () => 'resume.token.state.extra'],
    [
      'a spec window beyond the limit',
      (q) => ((q.spec as { window: number }).window = 1e12),
      () => 'resume.token.spec.window',
    ],
    [
      'a spec field the server does not know',
      (q) => ((q.spec as unknown as Record<string, unknown>).extra = 1),
      () => 'resume.token.spec',
    ],
    ['step 2^53', (q) => ((q as { step: number }).step = 2 ** 53), () => 'resume.token.step'],
    // Safe itself, but the step after it is not: it used to fail with INTERNAL after one batch.
    ['step 2^53 - 1', (q) => ((q as { step: number }).step = 2 ** 53 - 1), () => 'resume.token.step'],
    // A token's spec is checked exactly as a fresh spec (these are refused in a request).
    [
      'a spec mixture weight of 1e300',
      (q) => ((q.spec as { mixture: { weights: Record<string, number> } }).mixture.weights = { speech: 1e300 }),
      () => 'resume.token.spec.mixture.weights["speech"]',
    ],
    [
      'a spec mixture temperature of -1',
      (q) => ((q.spec as { mixture: { temperature: number } }).mixture.temperature = -1),
      () => 'resume.token.spec.mixture.temperature',
    ],
    ['world size 0', (q) => ((q as { worldSize: number }).worldSize = 0), () => 'resume.token.world_size'],
  ];
  for (const [name, edit, field] of cases) {
    it(
      `refuses ${name} with INVALID_ARGUMENT naming the field, promptly`,
      async () => {
        const r = await resume(forge(edit));
        expect(r, `no answer within ${BOUND_MS} ms`).not.toBe('no answer');
        expectStatus(r as Collected, Status.INVALID_ARGUMENT, field());
      },
      BOUND_MS * 2,
    );
  }

  it('still resumes an unmodified re-encoding, and health stayed SERVING', async () => {
    const r = await resume(forge(() => undefined));
    expect(r).not.toBe('no answer');
    expect((r as Collected).error).toBeUndefined();
    expect((r as Collected).batches).toHaveLength(2);
    expect(await check(health)).toBe('SERVING');
  });
});

/**
 * `server.token_key`: tokens are HMAC-SHA256 signed, so only servers holding the key can mint
 * them. Replicas sharing the key resume each other's tokens; an unsigned token, one signed with
 * another key or a signed one whose payload was edited is refused with INVALID_ARGUMENT.
 */
describe('signed resume tokens (server.token_key)', () => {
  const KEY = 'replica-shared-secret-0123';
  let signed: DataServiceCore;
  let other: DataServiceCore;
  let plain: DataServiceCore;
  let token: Buffer;
  beforeAll(async () => {
    const index = inject('sampleIndex');
    signed = await openCore(index, { 'server.token_key': KEY });
    other = await openCore(index, { 'server.token_key': 'another-key-of-16-chars' });
    plain = await openCore(index);
    token = take(signed.open({ spec: trainSpec({ batchSize: 2, seqLen: 2048 }) }), 2).batches[1]!.resumeToken as Buffer;
  });
  afterAll(() => [signed, other, plain].forEach((c) => c?.catalog.reader.close()));

  const refused = (core: DataServiceCore, t: Uint8Array, why: RegExp): void => {
    expect(() => core.open({ resume: { token: t } })).toThrow(why);
    try {
      core.open({ resume: { token: t } });
    } catch (err) {
      expect((err as { code: string }).code).toBe('INVALID_ARGUMENT');
    }
  };

  it('a replica with the same key resumes a signed token exactly', () => {
    const again = take(signed.open({ resume: { token } }), 1).batches[0]!;
    expect(Buffer.from(again.resumeToken).subarray(0, 4)).toEqual(Buffer.from([0x46, 0x53, 0x54, 2]));
    const p = decodeToken(token, signed.catalog.reader.fingerprint, [KEY]);
    expect(again.step).toBe(p.step);
  });

  it("refuses an unsigned token, another key's token, an edited payload and a signed token on a keyless server", () => {
    const p = decodeToken(token, signed.catalog.reader.fingerprint, [KEY]);
    refused(signed, encodeToken(p), /not signed/);
    refused(other, token, /signature does not match/);
    const edited = Buffer.from(token);
    edited[edited.length - 1] = edited[edited.length - 1]! ^ 1;
    refused(signed, edited, /signature does not match/);
    refused(plain, token, /has no server.token_keys/);
  });

  it('server.token_keys rotates the key: the first signs, every one verifies', async () => {
    const NEW = 'the-next-shared-secret-4567';
    const rotated = await openCore(inject('sampleIndex'), { 'server.token_keys': `${NEW},${KEY}` });
    const onlyNew = await openCore(inject('sampleIndex'), { 'server.token_keys': NEW });
    try {
      // A checkpoint signed with the old key resumes, exactly where it left off...
      const resumed = take(rotated.open({ resume: { token } }), 1).batches[0]!;
      const reference = take(signed.open({ resume: { token } }), 1).batches[0]!;
      expect(digests([resumed], false)).toEqual(digests([reference], false));
      // ...and what it mints now is signed with the new key only.
      const next = resumed.resumeToken as Buffer;
      expect(decodeToken(next, rotated.catalog.reader.fingerprint, [NEW]).step).toBe(
        decodeToken(token, signed.catalog.reader.fingerprint, [KEY]).step + 1,
      );
      refused(signed, next, /signature does not match/);
      expect(() => take(onlyNew.open({ resume: { token: next } }), 1)).not.toThrow();
      // Once the old key is dropped, its tokens are refused.
      refused(onlyNew, token, /signature does not match/);
    } finally {
      rotated.catalog.reader.close();
      onlyNew.catalog.reader.close();
    }
  });

  it('server.token_key is the one-key shorthand: setting both is a configuration error', () => {
    expect(() =>
      loadConfig(
        undefined,
        { 'index.dir': inject('sampleIndex'), 'server.token_key': KEY, 'server.token_keys': KEY },
        {},
      ),
    ).toThrow(/server\.token_keys.*not both/);
    expect(() =>
      loadConfig(undefined, { 'index.dir': inject('sampleIndex'), 'server.token_keys': 'short' }, {}),
    ).toThrow(/16 characters/);
  });
});
