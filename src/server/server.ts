import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { Loaded } from '../config/load-config.js';
import { Metrics } from '../metrics/metrics.js';
import { DataServiceCore } from '../stream/data-service-core.js';
import { makeAuthCheck } from './auth.js';
import { DataServiceHandlers } from './data-service.js';
import { startHttp } from './http-server.js';
import { dataServiceDefinition, LOADER_OPTIONS, PROTO_FILE } from './proto.js';
import { statusRoutes } from './status-page.js';

export interface RunningServer {
  readonly port: number;
  readonly httpPort: number;
  readonly core: DataServiceCore;
  /** Drains open streams (each gets its resume token), then stops. */
  shutdown(): Promise<void>;
}

const SERVICE = 'flanstream.v1.DataService';

export async function startServer(loaded: Loaded): Promise<RunningServer> {
  const { config } = loaded;
  const core = await DataServiceCore.open(config.index.dir, {
    mixtures: loaded.mixtures,
    heldoutSets: loaded.heldoutSets,
    defaultHeldout: config.default_heldout,
    defaults: { window: config.stream.window, overlong: config.stream.overlong, maxTurns: config.stream.max_turns },
    limits: { maxBatchTokens: config.server.max_batch_tokens, maxSeqLen: config.server.max_seq_len, maxWorldSize: config.server.max_world_size },
    systemPrompt: config.stream.system_prompt,
    cacheBytes: config.index.cache_bytes,
  });
  const metrics = new Metrics(core.reader, core.domains());
  const handlers = new DataServiceHandlers(core, metrics, { maxStreams: config.server.max_streams, maxUpdatesPerSecond: config.server.max_updates_per_second }, makeAuthCheck(config.server.auth_tokens));

  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.server.max_message_bytes,
    'grpc.max_send_message_length': config.server.max_message_bytes,
  });
  const definition = protoLoader.loadSync([PROTO_FILE, healthProtoPath], LOADER_OPTIONS);
  server.addService(dataServiceDefinition(definition), handlers.implementation());
  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE]: 'NOT_SERVING' });
  health.addToServer(server);
  new ReflectionService(definition).addToServer(server);

  const { cert, key } = config.server.tls;
  const creds = cert && key ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(cert), private_key: readFileSync(key) }]) : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${config.server.host}:${config.server.port}`, creds, (err, p) => (err ? reject(err) : resolve(p)));
  });
  let ready = true;
  health.setStatus('', 'SERVING');
  health.setStatus(SERVICE, 'SERVING');

  let http: HttpServer | undefined;
  let httpPort = -1;
  if (config.server.http_port >= 0) {
    ({ server: http, port: httpPort } = await startHttp(config.server.host, config.server.http_port, { metrics, ready: () => ready, routes: statusRoutes(core, handlers) }));
  }

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      ready = false;
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE, 'NOT_SERVING');
      handlers.drain();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, config.server.shutdown_grace_ms);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (http) {
        http.closeAllConnections();
        await new Promise<void>((resolve) => http!.close(() => resolve()));
      }
      core.reader.close();
    })();
    return stopping;
  };
  return { port, httpPort, core, shutdown };
}
