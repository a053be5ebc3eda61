import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const TOKEN = 'metrics-reader-0123';

/** A GET that never retries (a refused connection is the answer here, not a race). */
async function get(url: string, token?: string): Promise<number | 'refused'> {
  try {
    return (await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {})).status;
  } catch {
    return 'refused';
  }
}

/**
 * The HTTP port has its own interface (server.http_host, default loopback even when gRPC listens
 * on every interface) and optional bearer auth (server.http_auth) on what shows other tenants'
 * streams: /metrics and /status.json. /healthz stays open for probes.
 */
describe('HTTP port access', () => {
  let open: TestServer;
  let guarded: TestServer;
  beforeAll(async () => {
    open = await startTestServer(inject('sampleIndex'), { 'server.host': '0.0.0.0' });
    guarded = await startTestServer(inject('sampleIndex'), {
      'server.auth_tokens': TOKEN,
      'server.http_auth': 'true',
      'server.http_host': '0.0.0.0',
    });
  });
  afterAll(async () => {
    await open?.stop();
    await guarded?.stop();
  });

  it('gRPC on 0.0.0.0 leaves the HTTP port on 127.0.0.1 unless server.http_host says otherwise', async () => {
    // Every 127/8 address is this machine: one bound to all interfaces answers on 127.0.0.2, one on 127.0.0.1 does not.
    expect(await get(`http://127.0.0.1:${open.server.httpPort}/healthz`)).toBe(200);
    expect(await get(`http://127.0.0.2:${open.server.httpPort}/metrics`)).toBe('refused');
    expect(await get(`http://127.0.0.2:${guarded.server.httpPort}/healthz`)).toBe(200);
  });

  it('with server.http_auth, /metrics and /status.json need a bearer token; /healthz and the page do not', async () => {
    const base = `http://127.0.0.1:${guarded.server.httpPort}`;
    for (const path of ['/metrics', '/status.json']) {
      expect(await get(base + path), `${path} without a token`).toBe(401);
      expect(await get(base + path, 'not-the-token-0123'), `${path} with a wrong token`).toBe(401);
      expect(await get(base + path, TOKEN), `${path} with the token`).toBe(200);
    }
    expect(await get(base + '/healthz')).toBe(200);
    expect(await get(base + '/')).toBe(200);
    // Without http_auth the same paths are open (the default).
    expect(await get(`http://127.0.0.1:${open.server.httpPort}/status.json`)).toBe(200);
  });

  it('server.http_auth without server.auth_tokens is a configuration error', () => {
    expect(() => loadConfig(undefined, { 'index.dir': inject('sampleIndex'), 'server.http_auth': 'true' }, {})).toThrow(
      /http_auth.*auth_tokens/,
    );
  });
});
