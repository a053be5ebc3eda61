import { status as Status } from '@grpc/grpc-js';
import { expect } from 'vitest';
import { toFlanStreamError, type FlanStreamError } from '../../clients/ts/errors.js';
import type { FlanStreamClient } from '../../clients/ts/service-client.js';
import type { TestServer } from './test-server.js';
import type { WireBatch, WireEnd, WireResponse } from '../../clients/ts/wire-types.js';

/**
 * Raw `StreamBatches` calls through the TS client's channel (any message, malformed ones included)
 * against a real server, and status assertions: for tests of what the server answers.
 */

/** What one raw `StreamBatches` call produced. */
export interface Collected {
  readonly batches: WireBatch[];
  readonly end?: WireEnd;
  readonly error?: FlanStreamError;
}

/**
 * Sends `messages` (anything: malformed requests included) on one raw call and reads responses
 * until a StreamEnd, an error, the end of the call, or `max` batches (then cancels). `reply`: a
 * trainer's answer to each batch before the last (a report; nothing when it returns undefined).
 */
export function collect(
  client: FlanStreamClient,
  messages: readonly object[],
  max = Infinity,
  reply?: (b: WireBatch) => object | undefined,
): Promise<Collected> {
  return new Promise((resolve) => {
    const call = client.streamBatches();
    const batches: WireBatch[] = [];
    let done = false;
    const finish = (r: Omit<Collected, 'batches'>, ended = false): void => {
      if (done) return;
      done = true;
      if (ended) call.end();
      else call.cancel();
      resolve({ batches, ...r });
    };
    call.on('data', (resp: WireResponse) => {
      if (resp.kind === 'end' && resp.end) finish({ end: resp.end }, true);
      else if (resp.batch) {
        batches.push(resp.batch);
        if (batches.length >= max) return finish({});
        const r = reply?.(resp.batch);
        if (r) call.write(r as never);
      }
    });
    call.on('error', (err: unknown) => finish({ error: toFlanStreamError(err, client.target) }));
    call.on('end', () => finish({}));
    for (const m of messages) call.write(m as never);
  });
}

/** Batches of a spec (first message), failing the test on any error. */
export async function batchesOf(
  client: FlanStreamClient,
  spec: object,
  n: number,
  updates: object[] = [],
): Promise<WireBatch[]> {
  const r = await collect(client, [{ spec: { maxBatches: n, ...spec }, updates }]);
  if (r.error) throw r.error;
  return r.batches;
}

/** Batches after resuming from `token`, failing the test on any error. */
export async function resumeFrom(
  client: FlanStreamClient,
  token: Uint8Array,
  n: number,
  extra: object = {},
): Promise<WireBatch[]> {
  const r = await collect(client, [{ resume: { token, maxBatches: n, ...extra } }]);
  if (r.error) throw r.error;
  return r.batches;
}

/** Asserts an error with `code` whose details (and `flanstream-field` trailer) name `field`. */
export function expectStatus(r: Collected, code: Status, field?: string): void {
  expect(r.error, `expected ${Status[code]}, got ${r.batches.length} batches`).toBeDefined();
  expect(r.error!.codeName).toBe(Status[code]);
  if (field !== undefined) {
    expect(r.error!.details).toContain(field);
    expect(r.error!.metadata['flanstream-field']).toBe(field);
  }
}

/** The server's open StreamBatches calls, from its Prometheus gauge. */
export async function activeStreams(ts: TestServer): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${ts.server.httpPort}/metrics`)).text();
  const m = /^flanstream_active_streams (\d+)$/m.exec(text);
  if (!m) throw new Error('no flanstream_active_streams gauge in /metrics');
  return Number(m[1]);
}
