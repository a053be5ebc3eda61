import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from '../metrics/metrics.js';

export interface HttpDeps {
  readonly metrics: Metrics;
  readonly ready: () => boolean;
  /** Extra routes (the status page and its JSON), path → handler returning [content type, body]. */
  readonly routes?: Readonly<Record<string, () => Promise<[string, string]> | [string, string]>>;
}

/** /metrics (Prometheus text format), /healthz (200 once the index is open) and extra routes. */
export async function startHttp(host: string, port: number, deps: HttpDeps): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const route = async (): Promise<void> => {
      if (path === '/metrics') return send(200, deps.metrics.registry.contentType, await deps.metrics.registry.metrics());
      if (path === '/healthz') return deps.ready() ? send(200, 'text/plain', 'ok\n') : send(503, 'text/plain', 'not ready\n');
      const handler = deps.routes?.[path];
      if (handler) {
        const [type, body] = await handler();
        return send(200, type, body);
      }
      return send(404, 'text/plain', 'not found\n');
    };
    route().catch((err: unknown) => send(500, 'text/plain', `error: ${String(err)}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}
