/**
 * Transport ceilings for the stream benchmark, on loopback, each streaming the same ~128 KB
 * of token bytes again and again (nothing built per message), honouring backpressure:
 * - `grpcPort`: bare grpc-js serving flanstream's DataService, one fixed Batch message
 *   serialized by proto-loader per write (what the bench reported as its ceiling before);
 * - `bytesPort`: bare grpc-js serving one method whose message has a single `bytes` field
 *   (google.protobuf.BytesValue), serialized once: the true gRPC transport limit;
 * - `socketPort`: a raw TCP server writing the bytes in a loop.
 * Run as a child process; prints {"grpcPort":…, "bytesPort":…, "socketPort":…} on stdout.
 */
import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { dataServiceDefinition, loadDefinition } from '../../../src/server/proto.js';

const bytes = Number(process.argv[2] ?? 131072);
const payload = Buffer.alloc(bytes, 7);
const message = { batch: { step: 0, batchSize: 8, seqLen: 4096, tokens: payload } };

/** BytesValue{value = payload}, encoded once: field 1, wire type 2, varint length, the bytes. */
function bytesValue(b: Buffer): Buffer {
  const len: number[] = [];
  for (let n = b.length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      len.push(n);
      break;
    }
    len.push((n % 128) | 128);
  }
  return Buffer.concat([Buffer.from([0x0a, ...len]), b]);
}
const encoded = bytesValue(payload);

/** Writes `msg` on `call` whenever grpc-js has room, from the first request until the call goes away. */
function pumpForever(call: grpc.ServerDuplexStream<unknown, unknown>, msg: unknown): void {
  let closed = false;
  call.on('cancelled', () => (closed = true));
  call.on('error', () => (closed = true));
  call.once('data', () => {
    const pump = (): void => {
      while (!closed) {
        if (!call.write(msg)) {
          call.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

async function bind(server: grpc.Server): Promise<number> {
  return new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
}

const batchServer = new grpc.Server({ 'grpc.max_send_message_length': 64 << 20 });
batchServer.addService(dataServiceDefinition(loadDefinition()), {
  getCorpusInfo: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
  streamBatches: (call: grpc.ServerDuplexStream<unknown, unknown>) => pumpForever(call, message),
});
const grpcPort = await bind(batchServer);

const identity = (b: Buffer): Buffer => b;
const bytesService: grpc.ServiceDefinition = {
  stream: {
    path: '/flanstream.bench.Bytes/Stream',
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};
const bytesServer = new grpc.Server({ 'grpc.max_send_message_length': 64 << 20 });
bytesServer.addService(bytesService, {
  stream: (call: grpc.ServerDuplexStream<unknown, unknown>) => pumpForever(call, encoded),
});
const bytesPort = await bind(bytesServer);

const tcp = createServer((sock) => {
  const pump = (): void => {
    while (sock.write(payload));
  };
  sock.on('drain', pump);
  sock.on('error', () => sock.destroy());
  pump();
});
await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
const addr = tcp.address();
console.log(JSON.stringify({ grpcPort, bytesPort, socketPort: typeof addr === 'object' && addr ? addr.port : 0 }));
process.on('SIGTERM', () => process.exit(0));
