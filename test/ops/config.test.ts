import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { configSchema } from '../../src/config/schema.js';
import { CLI, ensureDist, ROOT } from './helpers/dist.js';

const DEFAULT_YAML = join(ROOT, 'config', 'default.yaml');

/** Leaf key paths of an object, e.g. "server.tls.cert". */
function leaves(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? leaves(v as Record<string, unknown>, `${prefix}${k}.`)
      : [`${prefix}${k}`],
  );
}

/** The message of what `fn` throws. */
function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  throw new Error('expected an error');
}

describe('configuration', () => {
  let dir: string;
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'flanstream-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('config/default.yaml states exactly the schema defaults, every key documented', () => {
    const defaults = configSchema.parse({});
    expect(loadConfig(DEFAULT_YAML, {}, {}).config).toEqual(defaults);
    const text = readFileSync(DEFAULT_YAML, 'utf8');
    // Every key appears (mixtures_dir/heldout_dir as comments: their default is a path of the install).
    for (const path of leaves(defaults as unknown as Record<string, unknown>)) {
      const key = path.split('.').at(-1)!;
      const line = text.split('\n').find((l) => new RegExp(`^\\s*#?\\s*${key}:`).test(l));
      expect(line, `${path} in default.yaml`).toBeDefined();
      expect(line, `${path} has a comment`).toMatch(/#\s*\S/);
    }
    // Active keys equal the defaults, value for value.
    const yaml = parseYaml(text) as Record<string, unknown>;
    for (const path of leaves(yaml)) {
      const get = (o: unknown): unknown => path.split('.').reduce((x, k) => (x as Record<string, unknown>)[k], o);
      expect(get(yaml), path).toEqual(get(defaults));
    }
  });

  it('FLANSTREAM_* environment variables override the file, flags override both', () => {
    const yaml = file('env.yaml', 'server:\n  port: 7000\n  max_streams: 9\nstream:\n  window: 64\n');
    const env = {
      FLANSTREAM_SERVER_PORT: '6001',
      FLANSTREAM_SERVER_AUTH_TOKENS: 'aaaaaaaa, bbbbbbbb',
      FLANSTREAM_STREAM_OVERLONG: 'truncate',
      FLANSTREAM_SERVER_TLS_CERT: '',
    };
    const c = loadConfig(yaml, {}, env).config;
    expect(c.server.port).toBe(6001);
    expect(c.server.max_streams).toBe(9);
    expect(c.server.auth_tokens).toEqual(['aaaaaaaa', 'bbbbbbbb']);
    expect(c.stream.overlong).toBe('truncate');
    expect(c.stream.window).toBe(64);
    const f = loadConfig(
      yaml,
      { 'server.port': '6002', 'stream.window': '512', 'index.dir': '/data/index' },
      env,
    ).config;
    expect([f.server.port, f.stream.window, f.index.dir, f.server.max_streams]).toEqual([6002, 512, '/data/index', 9]);
  });

  it('leaves FLANSTREAM_* variables of other tools alone (FLANSTREAM_PYTHON, FLANSTREAM_TEST_*)', () => {
    expect(
      loadConfig(undefined, {}, { FLANSTREAM_PYTHON: '/usr/bin/python3', FLANSTREAM_TEST_STARTUP_TIMEOUT: '60' })
        .config,
    ).toEqual(configSchema.parse({}));
  });

  it('an unknown key stops start-up with a message naming it', () => {
    expect(failure(() => loadConfig(file('k1.yaml', 'server:\n  portt: 1\n'), {}, {}))).toMatch(/server.*portt/);
    expect(failure(() => loadConfig(file('k2.yaml', 'streams:\n  window: 1\n'), {}, {}))).toMatch(/streams/);
    expect(failure(() => loadConfig(undefined, {}, { FLANSTREAM_SERVER_PROT: '1' }))).toMatch(/FLANSTREAM_SERVER_PROT/);
    expect(failure(() => loadConfig(undefined, {}, { FLANSTREAM_DEFAULT_HELDOUTS: 'x' }))).toMatch(
      /FLANSTREAM_DEFAULT_HELDOUTS/,
    );
    expect(failure(() => loadConfig(undefined, { 'stream.windw': '5' }, {}))).toMatch(/stream\.windw/);
  });

  it('a bad value stops start-up with a message naming the key', () => {
    const cases: [string, RegExp][] = [
      ['server:\n  port: abc\n', /server\.port/],
      ['server:\n  port:\n', /server\.port/],
      ['server:\n  port: 70000\n', /server\.port/],
      ['server:\n  max_streams: 0\n', /server\.max_streams/],
      ['server:\n  auth_tokens: [short]\n', /server\.auth_tokens/],
      ['server:\n  tls:\n    cert: /tmp/cert.pem\n', /server\.tls\.key/],
      ['server:\n  max_batch_tokens: 100000000\n', /server\.max_message_bytes/],
      ['stream:\n  overlong: sometimes\n', /stream\.overlong/],
      ['server: 5\n', /server/],
      ['[1, 2]\n', /mapping/],
      ['server: {port: [\n', /not valid YAML/],
    ];
    cases.forEach(([text, want], i) =>
      expect(
        failure(() => loadConfig(file(`v${i}.yaml`, text), {}, {})),
        text,
      ).toMatch(want),
    );
    expect(failure(() => loadConfig(undefined, {}, { FLANSTREAM_SERVER_MAX_STREAMS: '-1' }))).toMatch(
      /server\.max_streams/,
    );
    expect(failure(() => loadConfig(undefined, { 'server.http_port': 'eighty' }, {}))).toMatch(/server\.http_port/);
    expect(failure(() => loadConfig(undefined, { default_heldout: 'nope' }, {}))).toMatch(/default_heldout.*nope/);
    expect(failure(() => loadConfig(join(dir, 'missing.yaml'), {}, {}))).toMatch(/--config.*missing\.yaml/);
  });

  describe('through the real CLI (node dist/cli.js)', () => {
    beforeAll(async () => {
      await ensureDist();
    }, 300_000);
    const run = (args: string[], env: Record<string, string> = {}): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, [CLI, ...args], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', ...env },
        timeout: 60_000,
      });

    it('serve --print-config prints the effective configuration (file < env < flags), tokens masked', () => {
      const yaml = file('cli.yaml', 'server:\n  max_streams: 7\nstream:\n  window: 32\n');
      const r = run(
        ['serve', '--config', yaml, '--print-config', '--port', '6100', '--http-port=-1', '--set', 'stream.window=99'],
        {
          FLANSTREAM_SERVER_AUTH_TOKENS: 'secret-token-1,secret-token-2',
          FLANSTREAM_SERVER_PORT: '6000',
          FLANSTREAM_INDEX_DIR: '/index',
        },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const printed = parseYaml(String(r.stdout)) as ReturnType<typeof configSchema.parse>;
      const want = configSchema.parse({
        server: { port: 6100, http_port: -1, max_streams: 7, auth_tokens: ['********', '********'] },
        index: { dir: '/index' },
        stream: { window: 99 },
      });
      expect(printed).toEqual({ ...want, mixtures_dir: printed.mixtures_dir, heldout_dir: printed.heldout_dir });
      expect(String(r.stdout)).not.toContain('secret-token');
    });

    it('a bad key or value exits 2 with a message naming it, no stack trace', () => {
      const bad = run(['serve', '--print-config', '--set', 'server.max_streams=lots']);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/^flanstream: .*server\.max_streams/);
      expect(bad.stderr).not.toMatch(/\n\s+at /);
      const unknown = run(['serve', '--print-config'], { FLANSTREAM_STREAM_WINDOWS: '3' });
      expect(unknown.status).toBe(2);
      expect(unknown.stderr).toMatch(/FLANSTREAM_STREAM_WINDOWS/);
    });
  });
});
