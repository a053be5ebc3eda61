import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../../src/config/load-config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { dataServiceDefinition, loadDefinition } from '../../src/server/proto.js';
import type { DataServiceClient } from '../../proto/generated/flanstream/v1/DataService.js';

export interface TestServer {
  readonly server: RunningServer;
  readonly target: string;
  readonly client: DataServiceClient;
  stop(): Promise<void>;
}

/**
 * The one harness: a real flanstream server on port 0 (gRPC and HTTP) over the given index,
 * with config overrides as `--set` would give them, and a raw gRPC client for it.
 */
export async function startTestServer(index: string, overrides: Record<string, string> = {}): Promise<TestServer> {
  const loaded = loadConfig(
    undefined,
    { 'index.dir': index, 'server.port': '0', 'server.http_port': '0', ...overrides },
    {},
  );
  const server = await startServer(loaded);
  const target = `127.0.0.1:${server.port}`;
  const Ctor = grpc.makeGenericClientConstructor(dataServiceDefinition(loadDefinition()), 'DataService');
  const client = new Ctor(target, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 256 << 20,
  }) as unknown as DataServiceClient;
  return {
    server,
    target,
    client,
    async stop() {
      client.close();
      await server.shutdown();
    },
  };
}
