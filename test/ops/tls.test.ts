import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { check, collect, corpusInfo, dataClient, healthClient } from './helpers/grpc.js';

/** TLS from a certificate and key path: TLS clients are served, plaintext clients cannot connect. */
describe('TLS', () => {
  let dir: string;
  let cert: string;
  let key: string;
  let server: RunningServer;
  const start = (overrides: Record<string, string>): Promise<RunningServer> =>
    startServer(
      loadConfig(
        undefined,
        { 'index.dir': inject('sampleIndex'), 'server.port': '0', 'server.http_port': '-1', ...overrides },
        {},
      ),
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flanstream-tls-'));
    cert = join(dir, 'cert.pem');
    key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'pipe' },
    );
    server = await start({ 'server.tls.cert': cert, 'server.tls.key': key });
  });
  afterAll(async () => {
    await server?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a client that verifies the certificate', async () => {
    const creds = grpc.credentials.createSsl(readFileSync(cert));
    const c = dataClient(`localhost:${server.port}`, creds);
    const h = healthClient(`localhost:${server.port}`, creds);
    try {
      expect((await corpusInfo(c)).tasks).toHaveLength(80);
      const r = await collect(c, {
        spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 1, maxBatches: 2 },
      });
      expect(r.error).toBeUndefined();
      expect(r.batches).toHaveLength(2);
      expect(await check(h, 'flanstream.v1.DataService')).toBe('SERVING');
    } finally {
      c.close();
      h.close();
    }
  });

  it('does not serve a plaintext client', async () => {
    const c = dataClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      await expect(corpusInfo(c)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      const r = await collect(c, {
        spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 1, maxBatches: 2 },
      });
      expect(r.batches).toHaveLength(0);
      expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      c.close();
    }
  });

  it('refuses to start with a missing or unreadable certificate, naming the key', async () => {
    await expect(start({ 'server.tls.cert': join(dir, 'nope.pem'), 'server.tls.key': key })).rejects.toThrow(
      /server\.tls\.cert.*nope\.pem/,
    );
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    await expect(start({ 'server.tls.cert': garbage, 'server.tls.key': key })).rejects.toThrow(
      /server\.tls\.cert.*garbage\.pem/,
    );
    await expect(start({ 'server.tls.cert': cert, 'server.tls.key': garbage })).rejects.toThrow(
      /server\.tls\.key.*garbage\.pem/,
    );
  });

  it("refuses a key that is not the certificate's, naming server.tls.key (not server.port)", async () => {
    const other = join(dir, 'other-key.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', other], {
      stdio: 'pipe',
    });
    const err = await start({ 'server.tls.cert': cert, 'server.tls.key': other }).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /^server\.tls\.key: .*other-key\.pem is not the private key of the certificate .*cert\.pem/,
    );
  });
});
