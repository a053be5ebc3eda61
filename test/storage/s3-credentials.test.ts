import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { credentialSource } from '../../src/storage/s3-location.js';
import { CLI } from '../helpers/cli.js';

/**
 * Where the S3 credentials come from is logged at start, in the AWS SDK's order of precedence, and
 * a server with none fails at once with a message saying how to give them. No request leaves the
 * machine: the endpoint is a closed loopback port and the instance metadata service is off.
 */
describe('S3 credential source', () => {
  const home = mkdtempSync(join(tmpdir(), 'flanstream-s3-creds-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('follows the SDK precedence: config, environment, profile, web identity, container, default chain', () => {
    const keys = { accessKeyId: 'k', secretAccessKey: 's' };
    const env = {
      AWS_ACCESS_KEY_ID: 'a',
      AWS_SECRET_ACCESS_KEY: 'b',
      AWS_PROFILE: 'p',
      AWS_WEB_IDENTITY_TOKEN_FILE: '/t',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/c',
    };
    expect(credentialSource(keys, env)).toMatch(/^config /);
    expect(credentialSource({}, env)).toMatch(/^environment /);
    // A key id without its secret is not a credential: the next source applies.
    expect(credentialSource({ accessKeyId: 'k' }, { ...env, AWS_SECRET_ACCESS_KEY: '' })).toMatch(/^profile "p"/);
    expect(
      credentialSource({}, { AWS_WEB_IDENTITY_TOKEN_FILE: '/t', AWS_CONTAINER_CREDENTIALS_FULL_URI: 'x' }),
    ).toMatch(/^web identity token/);
    expect(credentialSource({}, { AWS_CONTAINER_CREDENTIALS_FULL_URI: 'x' })).toMatch(/^container credentials/);
    expect(credentialSource({}, {})).toMatch(/else the instance metadata service$/);
    expect(credentialSource({}, { AWS_EC2_METADATA_DISABLED: 'TRUE' })).toMatch(/else nothing/);
  });

  /** `flanstream serve --index s3://…` with only PATH, HOME and what the case adds in its environment. */
  function serve(env: Record<string, string>): { status: number | null; stderr: string } {
    const r = spawnSync(
      process.execPath,
      [
        CLI,
        'serve',
        '--index',
        's3://flan/live',
        '--port',
        '0',
        '--set',
        'storage.s3.endpoint=http://127.0.0.1:1',
        '--set',
        'storage.s3.max_attempts=1',
      ],
      {
        encoding: 'utf8',
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? '', HOME: home, AWS_EC2_METADATA_DISABLED: 'true', ...env },
      },
    );
    return { status: r.status, stderr: r.stderr };
  }

  const logged = (stderr: string): string | undefined =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event?: string; source?: string })
      .find((e) => e.event === 's3_credentials')?.source;

  it('without credentials: logs that there are none and fails at once, saying how to give them', () => {
    const r = serve({});
    expect(logged(r.stderr)).toBe(
      'default chain: shared files (~/.aws) if present, else nothing (AWS_EC2_METADATA_DISABLED=true)',
    );
    expect(r.stderr).toMatch(/s3:\/\/flan\/live: no credentials found; set storage\.s3\.access_key_id/);
    expect(r.status).toBe(2);
  });

  it('with keys in the environment: logs the environment as the source', () => {
    const r = serve({ AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' });
    expect(logged(r.stderr)).toBe('environment (AWS_ACCESS_KEY_ID)');
    // The closed endpoint fails the open; the point is the logged source, and no credential error.
    expect(r.stderr).not.toMatch(/no credentials found/);
    expect(r.status).not.toBe(0);
  });
});
