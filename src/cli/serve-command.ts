import { stringify } from 'yaml';
import { loadConfig, printableConfig } from '../config/load-config.js';
import { startServer } from '../server/server.js';
import { describeAvailability } from '../splits/availability.js';

export interface ServeFlags {
  readonly config?: string;
  readonly printConfig: boolean;
  /** Config key path → value, from --index/--port/--host/--http-port and --set k=v. */
  readonly overrides: Record<string, string>;
}

export async function serveCommand(flags: ServeFlags): Promise<void> {
  const loaded = loadConfig(flags.config, flags.overrides);
  if (flags.printConfig) {
    process.stdout.write(stringify(printableConfig(loaded.config)));
    return;
  }
  const server = await startServer(loaded);
  const { host } = loaded.config.server;
  const target = `${host === '0.0.0.0' ? 'localhost' : host}:${server.port}`;
  // One machine-readable line on stdout for scripts and tests; the human text goes to stderr.
  console.log(
    JSON.stringify({
      event: 'listening',
      port: server.port,
      httpPort: server.httpPort,
      index: server.core.catalog.fingerprint,
    }),
  );
  process.stderr.write(
    [
      `flanstream serving ${server.core.catalog.records.toLocaleString('en-US')} records (${server.core.catalog.tasks.length} tasks) from ${loaded.config.index.dir}`,
      `  gRPC   ${target}   (flanstream.v1.DataService, grpc.health.v1.Health, reflection)`,
      server.httpPort >= 0
        ? `  HTTP   http://${host === '0.0.0.0' ? 'localhost' : host}:${server.httpPort}/   (/metrics, /healthz, status page)`
        : '',
      '',
      'Connect from PyTorch:',
      '  PYTHONPATH=clients/python python3 -c "from flanstream import FlanStreamDataset as D; b = next(iter(D(\'' +
        target +
        "', batch_size=2, seq_len=2048))); print(b['input_ids'].shape)\"",
      '',
    ].join('\n') + '\n',
  );
  // Sets and mixtures naming tasks this corpus lacks (a one-domain release) do not stop start-up.
  for (const line of describeAvailability(server.core.catalog.availability)) process.stderr.write(`warning: ${line}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${signal}: draining streams (clients receive their resume tokens)\n`);
    server.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
