import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { coreSettings } from '../config/core-settings.js';
import type { Loaded } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import { InvalidArgumentError, describeError } from '../errors.js';
import { Metrics } from '../metrics/metrics.js';
import { DataServiceCore } from '../stream/data-service-core.js';
import { IndexLock } from '../index/index-lock.js';
import type { WireResponse } from '../stream/wire-types.js';
import { makeAuthCheck, makeBearerCheck } from './auth.js';
import { DataServiceHandlers } from './data-service.js';
import { Health } from './health.js';
import { startHttp } from './http-server.js';
import { dataServiceDefinition, lenientRequests, LOADER_OPTIONS, PROTO_FILE, PROTO_ROOT } from './proto.js';
import { reflectionPackage } from './reflection-descriptors.js';
import { encodeStreamResponse } from './response-encoder.js';
import { ConnectionGuard } from './connection-guard.js';
import { listenGrpc, type GrpcListener, type TlsPair } from './grpc-listener.js';
import { SendBudget } from './send-budget.js';
import { PlanBudget } from './plan-budget.js';
import { statusRoutes } from './status-page.js';
import { StreamMonitor } from './stream-monitor.js';
import { LocalOpener } from './served-stream.js';
import { WorkerPool } from './worker-pool.js';

export interface RunningServer {
  readonly port: number;
  readonly httpPort: number;
  readonly core: DataServiceCore;
  /** Drains open streams (each gets its resume token), then stops. */
  shutdown(): Promise<void>;
}

const SERVICE = 'flanstream.v1.DataService';
/** The health service's .proto by its import path (grpc-health-check ships it under proto/). */
const HEALTH_PROTO_FILE = 'health/v1/health.proto';

function readPem(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new InvalidArgumentError(key, `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

function credentials(tls: Config['server']['tls']): TlsPair | undefined {
  if (!tls.cert) return undefined;
  const cert = readPem('server.tls.cert', tls.cert);
  const key = readPem('server.tls.key', tls.key);
  // grpc-js only notices a bad PEM when binding, as an OpenSSL error blamed on the port: parse
  // both here so the message names the key to fix.
  const parse = (name: string, path: string, fn: () => unknown): void => {
    try {
      fn();
    } catch (err) {
      throw new InvalidArgumentError(name, `${path} is not a usable PEM file (${describeError(err)})`);
    }
  };
  let x509: X509Certificate | undefined;
  let pkey: KeyObject | undefined;
  parse('server.tls.cert', tls.cert, () => (x509 = new X509Certificate(cert)));
  parse('server.tls.key', tls.key, () => (pkey = createPrivateKey(key)));
  // A key from another pair parses fine and fails only when binding (blamed on server.port).
  if (!x509!.checkPrivateKey(pkey!))
    throw new InvalidArgumentError(
      'server.tls.key',
      `${tls.key} is not the private key of the certificate ${tls.cert}; give the key the certificate was made with`,
    );
  return { cert, key };
}

/** The DataService definition with the hand-written response encoder, counting the bytes sent. */
function countingDefinition(def: grpc.ServiceDefinition, metrics: Metrics): grpc.ServiceDefinition {
  const method = def.StreamBatches as grpc.MethodDefinition<unknown, unknown>;
  return {
    ...def,
    StreamBatches: {
      ...method,
      // Batches arrive encoded (the pump needs their size before queueing them); StreamEnds do not.
      responseSerialize: (value: unknown) => {
        const bytes = Buffer.isBuffer(value) ? value : encodeStreamResponse(value as WireResponse);
        metrics.observeBytes(bytes.length);
        return bytes;
      },
    },
  };
}

/**
 * Starts serving `index.dir`, holding a claim on a local index directory until shut down: while
 * it is held, `flanstream index` into that directory is refused (see IndexLock.serve).
 */
export async function startServer(loaded: Loaded): Promise<RunningServer> {
  const dir = loaded.config.index.dir;
  const claim = IndexLock.serving(dir, (message) =>
    console.error(JSON.stringify({ event: 'index_unclaimed', message })),
  );
  try {
    const running = await startClaimed(loaded);
    return { ...running, shutdown: () => running.shutdown().finally(() => claim?.release()) };
  } catch (err) {
    claim?.release();
    throw err;
  }
}

async function startClaimed(loaded: Loaded): Promise<RunningServer> {
  const { config } = loaded;
  // Before the index opens, so a bad certificate path fails fast and names its key.
  const creds = credentials(config.server.tls);
  const settings = coreSettings(loaded);
  const core = await DataServiceCore.open(config.index.dir, settings);
  let pool: WorkerPool | undefined;
  try {
    pool =
      config.server.workers > 0
        ? await WorkerPool.start(core, config.index.dir, settings, config.server.workers)
        : undefined;
  } catch (err) {
    core.catalog.close();
    throw err;
  }
  const metrics = new Metrics(core.catalog, pool ?? core.catalog.plans);
  const monitor = new StreamMonitor();
  metrics.watchPolicies(() => monitor.policies());
  const budget = new SendBudget(config.server.send_budget_bytes);
  metrics.trackUnsent(() => budget.bytes);
  const plans = new PlanBudget(config.server.plan_budget_bytes);
  metrics.trackPlans(plans);
  metrics.trackOpens(() => core.opens + (pool?.opens ?? 0));
  const handlers = new DataServiceHandlers(
    core,
    metrics,
    {
      maxStreams: config.server.max_streams,
      maxUpdatesPerSecond: config.server.max_updates_per_second,
      firstMessageMs: config.server.first_message_timeout_ms,
      bufferBatches: config.server.stream_buffer_batches,
      bufferBytes: config.server.stream_buffer_bytes,
      maxMessageBytes: config.server.max_message_bytes,
    },
    makeAuthCheck(config.server.auth_tokens),
    monitor,
    budget,
    pool ?? new LocalOpener(core),
    plans,
  );

  const server = new grpc.Server({
    // Requests are small (a spec, a token, an update): a 20 MB one once blocked the server for 11 s.
    'grpc.max_receive_message_length': config.server.max_request_bytes,
    'grpc.max_send_message_length': config.server.max_message_bytes,
  });
  const definition = protoLoader.loadSync([PROTO_FILE, healthProtoPath], LOADER_OPTIONS);
  server.addService(
    lenientRequests(countingDefinition(dataServiceDefinition(definition), metrics)),
    handlers.implementation(),
  );
  // Health is unauthenticated on purpose: load balancers and kubelet probes carry no token.
  const health = new Health(['', SERVICE], 'NOT_SERVING', config.server.max_health_watches, () =>
    metrics.watchesRefused.inc(),
  );
  metrics.trackWatches(() => health.watching);
  health.addToServer(server);
  new ReflectionService(
    reflectionPackage([
      { root: PROTO_ROOT, file: PROTO_FILE },
      { root: healthProtoPath.slice(0, -HEALTH_PROTO_FILE.length), file: HEALTH_PROTO_FILE },
    ]),
  ).addToServer(server);

  const guard = new ConnectionGuard(
    { maxConnections: config.server.max_connections, handshakeMs: config.server.handshake_timeout_ms },
    (why) => metrics.connectionsRefused.inc({ reason: why }),
  );
  metrics.trackConnections(() => guard.open);
  let listener: GrpcListener;
  try {
    listener = await listenGrpc(
      server,
      config.server.host,
      config.server.port,
      creds,
      guard,
      config.server.handshake_timeout_ms,
    );
  } catch (err) {
    await pool?.close();
    core.catalog.close();
    throw err;
  }
  const { port } = listener;
  // Ready means the index is open and the port bound; it turns false as soon as shutdown starts.
  let ready = true;
  health.setAll('SERVING');
  // The index republished or deleted under this server (a local manifest looked at here and before
  // a shard is first opened; on object storage, its manifest's ETag asked here every few seconds
  // without waiting, and a read that failed its If-Match): streams get
  // FAILED_PRECONDITION, and the server stops being ready, saying why.
  const storage = core.catalog.reader.storage;
  let notReady: string | undefined;
  const indexWatch = setInterval(() => {
    const why = storage.checkPublication?.() ?? storage.changed;
    if (why === undefined || !ready) return;
    ready = false;
    notReady = why;
    health.setAll('NOT_SERVING');
    console.error(JSON.stringify({ event: 'index_changed', index: storage.location, message: why }));
  }, 500);
  indexWatch.unref();

  let http: HttpServer | undefined;
  let httpPort = -1;
  if (config.server.http_port >= 0) {
    try {
      ({ server: http, port: httpPort } = await startHttp(config.server.http_host, config.server.http_port, {
        metrics,
        ...(config.server.http_auth ? { authorize: makeBearerCheck(config.server.auth_tokens) } : {}),
        ready: () => ready,
        notReady: () => notReady,
        routes: statusRoutes({
          catalog: core.catalog,
          monitor,
          ready: () => ready,
          activeStreams: () => handlers.activeStreams,
        }),
      }));
    } catch (err) {
      listener.close();
      server.forceShutdown();
      await pool?.close();
      core.catalog.close();
      throw err;
    }
  }

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      const deadline = Date.now() + config.server.shutdown_grace_ms;
      const until = (ms: number, p: Promise<void>): Promise<boolean> =>
        new Promise((resolve) => {
          const timer = setTimeout(() => resolve(false), Math.max(0, ms));
          void p.then(() => {
            clearTimeout(timer);
            resolve(true);
          });
        });
      // 1. Not ready: probes and load balancers stop sending work. The port is released at once
      // (a replacement can bind it during the grace) and each connection gets an HTTP/2 GOAWAY:
      // its open streams go on, new ones go elsewhere.
      clearInterval(indexWatch);
      ready = false;
      health.setAll('NOT_SERVING');
      listener.drain(Math.max(0, deadline - Date.now()));
      // 2. Every open stream finishes its in-flight batch and gets StreamEnd{shutdown, token}.
      await until(deadline - Date.now(), handlers.drain());
      // 3. Close: health watchers are ended (they never finish on their own); the rest of the grace
      // lets StreamEnds still queued in HTTP/2 buffers reach slow readers before anything is cut.
      health.closeWatchers();
      listener.close();
      const closed = until(deadline - Date.now(), new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
      if (!(await closed)) server.forceShutdown();
      // Until every socket closed (its last bytes written), not only its session: exiting before
      // loses what is still queued on the socket and resets the connection under the reader.
      await until(deadline - Date.now(), guard.closed());
      if (http) {
        http.closeAllConnections();
        await new Promise<void>((resolve) => http!.close(() => resolve()));
      }
      await pool?.close();
      core.catalog.close();
    })();
    return stopping;
  };
  return { port, httpPort, core, shutdown };
}
