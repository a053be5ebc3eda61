import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { dataServiceDefinition, loadDefinition } from '../../../src/server/proto.js';
import type { WireBatch, WireEnd } from '../../../src/stream/wire-types.js';

/** Raw gRPC clients for the ops tests (independent of clients/ts, so they test the server alone). */
export type DataClient = grpc.Client & {
  getCorpusInfo(
    req: object,
    md: grpc.Metadata,
    cb: (err: grpc.ServiceError | null, v?: { tasks: { path: string; domain: string }[] }) => void,
  ): grpc.ClientUnaryCall;
  streamBatches(md?: grpc.Metadata): grpc.ClientDuplexStream<object, Message>;
};
export type Message = { batch?: WireBatch; end?: WireEnd; kind?: string };

const DataCtor = grpc.makeGenericClientConstructor(dataServiceDefinition(loadDefinition()), 'DataService');

export function dataClient(
  target: string,
  creds = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): DataClient {
  return new DataCtor(target, creds, {
    'grpc.max_receive_message_length': 256 << 20,
    ...options,
  }) as unknown as DataClient;
}

export function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

export function corpusInfo(
  c: DataClient,
  md = new grpc.Metadata(),
): Promise<{ tasks: { path: string; domain: string }[] }> {
  return new Promise((resolve, reject) => c.getCorpusInfo({}, md, (e, v) => (e ? reject(e) : resolve(v!))));
}

export interface Collected {
  batches: WireBatch[];
  end?: WireEnd;
  error?: grpc.ServiceError;
}

/**
 * Opens a stream, sends `first`, and collects until the stream ends or `stopAfter` batches
 * arrived (then cancels). `onBatch` may await to pace the reader (backpressure reaches the server).
 */
export function collect(
  c: DataClient,
  first: object,
  opts: {
    md?: grpc.Metadata;
    stopAfter?: number;
    onBatch?: (b: WireBatch, n: number) => Promise<void> | void;
    onCall?: (call: grpc.ClientDuplexStream<object, Message>) => void;
  } = {},
): Promise<Collected> {
  return new Promise((resolve) => {
    const out: Collected = { batches: [] };
    const call = c.streamBatches(opts.md ?? new grpc.Metadata());
    opts.onCall?.(call);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve(out);
    };
    call.on('data', (m: Message) => {
      if (done) return;
      if (m.batch) {
        out.batches.push(m.batch);
        if (opts.stopAfter && out.batches.length >= opts.stopAfter) {
          call.cancel();
          finish();
          return;
        }
        const p = opts.onBatch?.(m.batch, out.batches.length);
        if (p) {
          call.pause();
          void p.then(() => call.resume());
        }
      } else if (m.end) out.end = m.end;
    });
    call.on('error', (e: grpc.ServiceError) => {
      if (e.code !== grpc.status.CANCELLED || !done) out.error = e;
      finish();
    });
    call.on('end', finish);
    call.write(first);
  });
}

/** What identifies a batch's content, byte for byte (every wire field but none elided). */
export function digest(b: WireBatch): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      ...b,
      tokens: undefined,
      resumeToken: undefined,
      examples: b.examples.map((e) => ({
        ...e,
        promptTokens: Buffer.from(e.promptTokens).toString('base64'),
        answerTokens: Buffer.from(e.answerTokens).toString('base64'),
      })),
    }),
  );
  h.update(Buffer.from(b.tokens));
  h.update(Buffer.from(b.resumeToken));
  return h.digest('hex');
}

export type HealthClient = grpc.Client & {
  check(req: { service: string }, cb: (e: grpc.ServiceError | null, v?: { status: string }) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
};

const healthDef = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
const HealthCtor = (
  grpc.loadPackageDefinition(healthDef) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  }
).grpc.health.v1.Health;

export function healthClient(
  target: string,
  creds = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): HealthClient {
  return new HealthCtor(target, creds, options) as unknown as HealthClient;
}

export function check(h: HealthClient, service = ''): Promise<string> {
  return new Promise((resolve, reject) => h.check({ service }, (e, v) => (e ? reject(e) : resolve(v!.status))));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * GET over HTTP, retried on connection errors: a kept-alive socket that the server closes after
 * its idle timeout just as fetch reuses it surfaces as ECONNRESET (a client-side race).
 */
export async function httpGet(url: string): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url);
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(50);
    }
  }
}

/** Prometheus text → sample name with labels → value. */
export async function scrape(httpPort: number): Promise<Map<string, number>> {
  const text = await (await httpGet(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Sum of the samples of `name` whose labels include all of `labels`. */
export function sumOf(m: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const [k, v] of m) {
    if (k !== name && !k.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([l, val]) => k.includes(`${l}="${val}"`))) total += v;
  }
  return total;
}
