/**
 * The TypeScript client's decode alone: CPU µs per batch on a file recorded by
 * `decode.py record` (raw StreamResponse messages as received): the message deserialization
 * grpc-js does with proto-loader, then `BatchDecoder.decode` (dense arrays, segments, stats).
 * Prints {"deserialize_us": …, "decode_us": …} (best of --reps passes).
 *   npx tsx test/bench/stream/ts-decode.ts FILE [--reps 3] [--client DIR]
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpuUsage } from 'node:process';
import * as protoLoader from '@grpc/proto-loader';
import type * as ProtoModule from '../../../clients/ts/proto.js';
import type * as WireModule from '../../../clients/ts/wire-decode.js';

const file = process.argv[2]!;
const reps = Number(process.argv[process.argv.indexOf('--reps') + 1] || 3);
const at = process.argv.indexOf('--client');
const root = resolve(at > 0 ? process.argv[at + 1]! : join(import.meta.dirname, '..', '..', '..'));
const { LOADER_OPTIONS, PROTO_FILE } = (await import(join(root, 'clients/ts/proto.ts'))) as typeof ProtoModule;
const wire = (await import(join(root, 'clients/ts/wire-decode.ts'))) as typeof WireModule;

const data = readFileSync(file);
const raws: Buffer[] = [];
for (let p = 0; p < data.length;) {
  const n = data.readUInt32LE(p);
  raws.push(data.subarray(p + 4, p + 4 + n));
  p += 4 + n;
}
raws.shift(); // the CorpusInfo
const def = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
const method = (def['flanstream.v1.DataService'] as Record<string, protoLoader.MethodDefinition<unknown, unknown>>)
  .StreamBatches!;
type Resp = { batch: Parameters<typeof wire.BatchDecoder.prototype.decode>[0] };
const cpu = (): number => {
  const u = cpuUsage();
  return (u.user + u.system) / 1000;
};
const dec = new wire.BatchDecoder();
let msgs: Resp[] = raws.map((r) => method.responseDeserialize(r) as Resp);
for (const m of msgs.slice(0, 20)) dec.decode(m.batch);
let des = Infinity;
let decode = Infinity;
for (let r = 0; r < reps; r++) {
  let t = cpu();
  msgs = raws.map((b) => method.responseDeserialize(b) as Resp);
  des = Math.min(des, ((cpu() - t) / msgs.length) * 1000);
  t = cpu();
  for (const m of msgs) dec.decode(m.batch);
  decode = Math.min(decode, ((cpu() - t) / msgs.length) * 1000);
}
console.log(JSON.stringify({ deserialize_us: des, decode_us: decode }));
