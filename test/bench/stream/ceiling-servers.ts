/**
 * Transport ceilings for the stream benchmark, on loopback: a bare grpc-js server that streams
 * one fixed Batch message (the same token bytes flanstream sends, nothing built per message),
 * honouring backpressure, and a raw TCP server that writes the same bytes in a loop. Run as a
 * child process; prints {"grpcPort":…, "socketPort":…} on stdout.
 */
import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { dataServiceDefinition, loadDefinition } from '../../../src/server/proto.js';

const bytes = Number(process.argv[2] ?? 131072);
const payload = Buffer.alloc(bytes, 7);
const message = { batch: { step: 0, batchSize: 8, seqLen: 4096, tokens: payload } };

const server = new grpc.Server({ 'grpc.max_send_message_length': 64 << 20 });
server.addService(dataServiceDefinition(loadDefinition()), {
  getCorpusInfo: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
  streamBatches: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
    let closed = false;
    call.on('cancelled', () => (closed = true));
    call.on('error', () => (closed = true));
    call.once('data', () => {
      const pump = (): void => {
        while (!closed) {
          if (!call.write(message)) {
            call.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  },
});
const grpcPort = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
);

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
console.log(JSON.stringify({ grpcPort, socketPort: typeof addr === 'object' && addr ? addr.port : 0 }));
process.on('SIGTERM', () => process.exit(0));
