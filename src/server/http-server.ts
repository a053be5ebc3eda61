import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, describeError } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';

export interface RouteResult {
  readonly type: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export type Route = () => Promise<RouteResult> | RouteResult;

export interface HttpDeps {
  readonly metrics: Metrics;
  readonly ready: () => boolean;
  /** Why the server is not ready, when it is for a reason other than shutting down (the body of /healthz's 503). */
  readonly notReady?: () => string | undefined;
  /** Extra routes (the status page, its script and JSON), path → handler. */
  readonly routes?: Readonly<Record<string, Route>>;
  /** server.http_auth: the bearer check of `authorization` on the paths that show data (throws to refuse). */
  readonly authorize?: (header: string | undefined) => void;
}

/** What other tenants must not read: every stream's spec and mixture, and the metrics. */
const PROTECTED = new Set(['/metrics', '/status.json']);

/**
 * /metrics (Prometheus text format; with `authorize`, it and /status.json need a bearer token), /healthz (200 while the index is open and the server is not
 * draining, 503 otherwise) and extra routes. Read-only: GET and HEAD only, nothing from disk.
 */
export async function startHttp(host: string, port: number, deps: HttpDeps): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const send = (code: number, type: string, body: string, headers: Readonly<Record<string, string>> = {}): void => {
      if (res.headersSent) return void res.end();
      res.writeHead(code, {
        'content-type': type,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        ...headers,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const route = async (): Promise<void> => {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return send(405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
      if (deps.authorize && PROTECTED.has(path)) {
        try {
          deps.authorize(req.headers.authorization);
        } catch (err) {
          return send(401, 'text/plain', `${describeError(err)}\n`, { 'www-authenticate': 'Bearer' });
        }
      }
      if (path === '/metrics')
        return send(200, deps.metrics.registry.contentType, await deps.metrics.registry.metrics());
      if (path === '/healthz')
        return deps.ready()
          ? send(200, 'text/plain', 'ok\n')
          : send(503, 'text/plain', `not ready${deps.notReady?.() ? `: ${deps.notReady()}` : ''}\n`);
      const handler = Object.hasOwn(deps.routes ?? {}, path) ? deps.routes?.[path] : undefined;
      if (handler) {
        const r = await handler();
        return send(200, r.type, r.body, r.headers);
      }
      return send(404, 'text/plain', 'not found\n');
    };
    route().catch((err: unknown) => send(500, 'text/plain', `error: ${describeError(err)}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new InvalidArgumentError(
          'server.http_port',
          `cannot listen on ${host}:${port} (${err.code ?? err.message}); choose another port, 0 for a free one or -1 to disable HTTP`,
        ),
      ),
    );
    server.listen(port, host, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}
