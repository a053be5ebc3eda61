import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { ROOT } from './helpers/dist.js';

const K8S = join(ROOT, 'config', 'deploy', 'kubernetes');
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const load = (f: string): Doc => parseYaml(readFileSync(join(K8S, f), 'utf8')) as Doc;

/**
 * Docker cannot run here, so the deployment files are checked by reading them: they agree with
 * each other and with the server (the ConfigMap's config.yaml and the Secret's variable load).
 */
describe('deployment files (config/deploy)', () => {
  it('Dockerfile: node:20, npm ci, build, index read-only at /index, serve on 0.0.0.0; every COPY source exists', () => {
    const text = readFileSync(join(ROOT, 'config', 'deploy', 'Dockerfile'), 'utf8');
    expect(text).toMatch(/^FROM node:20\S* AS build$/m);
    expect(text).toMatch(/^RUN npm ci\b/m);
    expect(text).toMatch(/npm run build/);
    expect(text).toMatch(/^ENTRYPOINT \["node", "dist\/cli\.js", "serve"\]$/m);
    expect(text).toMatch(/^CMD \[.*"--index", "\/index", "--host", "0\.0\.0\.0"\]$/m);
    for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1]!.split(' ')) expect(existsSync(join(ROOT, src)), `COPY ${src}`).toBe(true);
    }
  });

  it('ConfigMap config.yaml loads with the server\'s schema; the Secret\'s variable is a known key', () => {
    const cm = load('configmap.yaml');
    const dir = mkdtempSync(join(tmpdir(), 'flanstream-deploy-'));
    try {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, cm.data['config.yaml'] as string);
      const secret = load('secret.yaml');
      const env = { FLANSTREAM_SERVER_AUTH_TOKENS: secret.stringData.FLANSTREAM_SERVER_AUTH_TOKENS as string };
      const { config } = loadConfig(file, {}, env);
      expect(config.server.host).toBe('0.0.0.0');
      expect(config.server.port).toBe(50051);
      expect(config.server.http_port).toBe(9464);
      expect(config.index.dir).toBe('/index');
      expect(config.server.auth_tokens).toEqual([env.FLANSTREAM_SERVER_AUTH_TOKENS]);
      const dep = load('deployment.yaml');
      // The drain must finish before the kubelet's SIGKILL.
      expect(config.server.shutdown_grace_ms).toBeLessThan(dep.spec.template.spec.terminationGracePeriodSeconds * 1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Deployment: gRPC-health readiness, /healthz liveness, index on a read-only PVC, config and Secret wired', () => {
    const dep = load('deployment.yaml');
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    expect(c.readinessProbe.grpc).toEqual({ port: 50051 });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.ports).toEqual([{ name: 'grpc', containerPort: 50051 }, { name: 'http', containerPort: 9464 }]);
    expect(c.args).toEqual(['--config', '/etc/flanstream/config.yaml', '--index', '/index', '--host', '0.0.0.0']);
    expect(c.envFrom).toEqual([{ secretRef: { name: load('secret.yaml').metadata.name } }]);
    expect(c.volumeMounts).toContainEqual({ name: 'index', mountPath: '/index', readOnly: true });
    expect(pod.volumes).toContainEqual({ name: 'index', persistentVolumeClaim: { claimName: load('index-pvc.yaml').metadata.name, readOnly: true } });
    expect(pod.volumes).toContainEqual({ name: 'config', configMap: { name: load('configmap.yaml').metadata.name } });
    expect(load('index-pvc.yaml').spec.accessModes).toEqual(['ReadOnlyMany']);
    expect(dep.spec.selector.matchLabels).toEqual(dep.spec.template.metadata.labels);
  });

  it('Service: headless, selecting the Deployment\'s pods, gRPC and HTTP ports; kustomization lists every file', () => {
    const svc = load('service.yaml');
    expect(svc.spec.clusterIP).toBe('None');
    expect(svc.spec.selector).toEqual(load('deployment.yaml').spec.template.metadata.labels);
    expect(svc.spec.ports.map((p: Doc) => [p.port, p.targetPort])).toEqual([[50051, 'grpc'], [9464, 'http']]);
    for (const f of load('kustomization.yaml').resources as string[]) expect(existsSync(join(K8S, f)), f).toBe(true);
  });
});
