import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execForm, last, layOutImage, mapPaths, parseDockerfile, runServer } from './helpers/container.js';
import { ensureDist, ROOT } from './helpers/dist.js';
import { bearer, check, corpusInfo, dataClient, healthClient, httpGet } from './helpers/grpc.js';
import { containerEnv, expand, K8S, named, render, type Doc } from './helpers/kustomize.js';

const run = promisify(execFile);
const DOCKERFILE = join(ROOT, 'config', 'deploy', 'Dockerfile');
const stages = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
const image = stages.at(-1)!;
const ENTRYPOINT = execForm(last(image.steps, 'ENTRYPOINT'));
const EXPOSED = last(image.steps, 'EXPOSE').split(/\s+/).map(Number);
const PORTS_ZERO = ['--port', '0', '--http-port', '0'];

const base = mkdtempSync(join(tmpdir(), 'flanstream-deploy-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let app = '';
beforeAll(async () => {
  await ensureDist();
  app = layOutImage(ROOT, DOCKERFILE, join(base, 'image'));
});

/** The effective configuration a command would serve with (`serve … --print-config`). */
async function effectiveConfig(argv: readonly string[], cwd: string, env: Record<string, string>): Promise<Doc> {
  const { stdout } = await run(process.execPath, [...argv.slice(1), '--print-config'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  return parseYaml(stdout) as Doc;
}

const info = (target: string, md?: grpc.Metadata): Promise<{ tasks: unknown[] }> => {
  const c = dataClient(target);
  return corpusInfo(c, md).finally(() => c.close());
};

/**
 * Docker and a kubelet cannot run here, so the deployment files are checked by doing what they
 * say: the image's filesystem is laid out from the Dockerfile's COPY lines and its ENTRYPOINT +
 * CMD run there against the sample index; the Deployment's container runs with its args, env
 * (Secret and ConfigMap) and mounts, and its probes are made against what it serves.
 */
describe('the image (config/deploy/Dockerfile), run as declared', () => {
  it('every COPY of the build context names a file of the repository', () => {
    for (const stage of stages) {
      for (const { op, args } of stage.steps.filter((s) => s.op === 'COPY' && !s.args.startsWith('--from'))) {
        for (const src of args.split(/\s+/).slice(0, -1))
          expect(existsSync(join(ROOT, src)), `${op} ${src}`).toBe(true);
      }
    }
  });

  it('ENTRYPOINT + CMD: listens on all interfaces on the EXPOSEd ports, the index at the VOLUME', async () => {
    const [volume] = JSON.parse(last(image.steps, 'VOLUME')) as string[];
    const argv = mapPaths([...ENTRYPOINT, ...execForm(last(image.steps, 'CMD'))], {
      '/app': app,
      [volume!]: inject('sampleIndex'),
    });
    const { server, index } = await effectiveConfig(argv, app, {});
    expect(server.host).toBe('0.0.0.0');
    expect(server.http_host).toBe('0.0.0.0');
    expect(EXPOSED).toEqual([server.port, server.http_port]);
    expect(index.dir).toBe(inject('sampleIndex'));
  });

  it('serves the sample index from the image layout: HEALTHCHECK passes, gRPC health SERVING, corpus info; SIGTERM exits 0', async () => {
    const [volume] = JSON.parse(last(image.steps, 'VOLUME')) as string[];
    const argv = mapPaths([...ENTRYPOINT, ...execForm(last(image.steps, 'CMD')), ...PORTS_ZERO], {
      '/app': app,
      [volume!]: inject('sampleIndex'),
    });
    const srv = await runServer(argv, app, {});
    const target = `127.0.0.1:${srv.port}`;
    // The HEALTHCHECK probes the EXPOSEd HTTP port; here the server listens on the port it got.
    const health = execForm(last(image.steps, 'HEALTHCHECK'));
    expect(health.join(' ')).toContain(`127.0.0.1:${EXPOSED[1]}/`);
    const probe = health.map((a) => a.replace(`127.0.0.1:${EXPOSED[1]}/`, `127.0.0.1:${srv.httpPort}/`));
    const healthcheck = (): Promise<number> =>
      run(process.execPath, probe.slice(1), { cwd: app }).then(
        () => 0,
        (e: { code?: number }) => e.code ?? -1,
      );
    try {
      expect(probe[0]).toBe('node');
      expect(await healthcheck()).toBe(0);
      const h = healthClient(target);
      expect(await check(h)).toBe('SERVING');
      h.close();
      expect((await info(target)).tasks).toHaveLength(80);
    } finally {
      expect(await srv.stop()).toBe(0);
    }
    expect(await healthcheck()).toBe(1);
  });
});

describe("Kubernetes (config/deploy/kubernetes): the Deployment's container, as the kubelet runs it", () => {
  const servers = render(K8S);
  const dep = named(servers, 'Deployment', 'flanstream');
  const pod = dep.spec.template.spec;
  const c = pod.containers[0];
  // What an operator puts in the Secret in place of its placeholders.
  const token = randomBytes(24).toString('hex');
  const secrets = {
    FLANSTREAM_SERVER_AUTH_TOKENS: token,
    FLANSTREAM_SERVER_TOKEN_KEY: randomBytes(32).toString('hex'),
  };
  const portOf = (p: number | string): number =>
    typeof p === 'number' ? p : c.ports.find((x: Doc) => x.name === p).containerPort;
  const env = (withSecrets = true): Record<string, string> => containerEnv(c, servers, withSecrets ? { secrets } : {});
  const servedDir = (): string => {
    const args = expand(c.args, env());
    return args[args.indexOf('--index') + 1]!;
  };

  /** Host folders for the container's mounts: the ConfigMap's files, the index claim (the sample index at the served path), emptyDirs. */
  function mounts(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const m of c.volumeMounts as Doc[]) {
      const vol = (pod.volumes as Doc[]).find((v) => v.name === m.name)!;
      const dir = join(base, 'volumes', m.name);
      mkdirSync(dir, { recursive: true });
      if (vol.persistentVolumeClaim) {
        expect(vol.persistentVolumeClaim.claimName).toBe('flanstream-index');
        const at = join(dir, servedDir().slice(m.mountPath.length + 1));
        mkdirSync(dirname(at), { recursive: true });
        if (!existsSync(at)) symlinkSync(inject('sampleIndex'), at, 'dir');
      }
      if (vol.configMap) {
        const cm = named(servers, 'ConfigMap', vol.configMap.name);
        for (const [f, text] of Object.entries(cm.data as Record<string, string>)) writeFileSync(join(dir, f), text);
      }
      out[m.mountPath] = dir;
    }
    return out;
  }
  const argv = (extra: string[] = []): string[] =>
    mapPaths([...ENTRYPOINT, ...expand(c.args, env()), ...extra], { '/app': app, ...mounts() });

  it('args, ConfigMap and Secret: the ports the container declares, probes and Service point at are the ones it listens on', async () => {
    expect(c.command).toBeUndefined(); // the image's ENTRYPOINT runs, with the container's args
    const { server, index } = await effectiveConfig(argv(), app, env());
    expect(server.host).toBe('0.0.0.0');
    expect(realpathSync(index.dir)).toBe(realpathSync(inject('sampleIndex')));
    expect(server.auth_tokens).toHaveLength(1); // printed masked; the running test uses it
    expect(server.token_key).toBe('********'); // set (from the Secret), printed masked
    expect([portOf('grpc'), portOf('http')]).toEqual([server.port, server.http_port]);
    expect(portOf(c.readinessProbe.grpc.port)).toBe(server.port);
    expect(portOf(c.startupProbe.grpc.port)).toBe(server.port);
    expect(portOf(c.livenessProbe.httpGet.port)).toBe(server.http_port);
    expect(Number(dep.spec.template.metadata.annotations['prometheus.io/port'])).toBe(server.http_port);
    const svc = named(servers, 'Service', 'flanstream');
    expect(svc.spec.selector).toEqual(dep.spec.template.metadata.labels);
    expect(dep.spec.selector.matchLabels).toEqual(dep.spec.template.metadata.labels);
    expect((svc.spec.ports as Doc[]).map((p) => [p.port, portOf(p.targetPort)])).toEqual([
      [server.port, server.port],
      [server.http_port, server.http_port],
    ]);
    // The drain must finish before the kubelet's SIGKILL.
    expect(server.shutdown_grace_ms).toBeLessThan(pod.terminationGracePeriodSeconds * 1000);
    // The index is mounted read-only.
    expect((pod.volumes as Doc[]).find((v) => v.persistentVolumeClaim)!.persistentVolumeClaim.readOnly).toBe(true);
  });

  it('with the Secret as committed (placeholders), the server refuses to start, naming the key', async () => {
    const committed = env(false);
    expect(committed.FLANSTREAM_SERVER_AUTH_TOKENS).toMatch(/^replace-me/);
    expect(committed.FLANSTREAM_SERVER_TOKEN_KEY).toMatch(/^replace-me/);
    const err = await runServer(argv(PORTS_ZERO), app, committed).then(
      async (srv) => {
        await srv.stop();
        return '';
      },
      (e: Error) => e.message,
    );
    expect(err).toMatch(/server\.auth_tokens\.0: is the placeholder of the deployment files/);
    expect(err).toMatch(/server\.token_key: is the placeholder of the deployment files/);
  });

  it("running: readiness (gRPC health) SERVING, liveness and scrape paths answer, the Secret's token is required; SIGTERM exits 0", async () => {
    const srv = await runServer(argv(PORTS_ZERO), app, env());
    const target = `127.0.0.1:${srv.port}`;
    try {
      const h = healthClient(target);
      expect(await check(h)).toBe('SERVING');
      h.close();
      expect((await httpGet(`http://127.0.0.1:${srv.httpPort}${c.livenessProbe.httpGet.path}`)).status).toBe(200);
      const metrics = await httpGet(
        `http://127.0.0.1:${srv.httpPort}${dep.spec.template.metadata.annotations['prometheus.io/path']}`,
      );
      expect(await metrics.text()).toContain('flanstream_active_streams');
      expect((await info(target, bearer(token))).tasks).toHaveLength(80);
      await expect(info(target)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      expect(await srv.stop()).toBe(0);
    }
  });
});
