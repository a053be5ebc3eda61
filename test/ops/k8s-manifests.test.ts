import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  containerEnv,
  containersOf,
  dataOf,
  expand,
  K8S,
  named,
  ofKind,
  render,
  type Doc,
} from './helpers/kustomize.js';

const servers = render(K8S);
const build = render(join(K8S, 'index-build'));
const all = [...servers, ...build];
const workloads = all.filter((d) => containersOf(d).length > 0);
const argAfter = (args: readonly string[], flag: string): string | undefined =>
  args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined;

/** The claim and the path inside it that a container path lies on (the longest mount that holds it). */
function onVolume(pod: Doc, c: Doc, path: string): { claim: string; sub: string; readOnly: boolean } {
  const mounts = (c.volumeMounts as Doc[])
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length);
  const m = mounts[0];
  if (!m) throw new Error(`${c.name}: ${path} is on no volume`);
  const vol = (pod.volumes as Doc[]).find((v) => v.name === m.name)!;
  if (!vol.persistentVolumeClaim) throw new Error(`${c.name}: ${path} is on volume ${m.name}, not a claim`);
  return {
    claim: vol.persistentVolumeClaim.claimName,
    sub: posix.join(m.subPath ?? '', posix.relative(m.mountPath, path)),
    readOnly: m.readOnly === true,
  };
}

/**
 * The Kubernetes manifests as `kubectl kustomize` renders them (the servers' set and the index
 * build's), held to what makes them one working deployment: the build writes where the servers
 * read, every claim exists, one image everywhere, the "restricted" Pod Security Standard, the
 * merge waits for its parts by itself, the token key comes from the Secret, and the monitoring
 * objects select what the server exposes.
 */
describe('config/deploy/kubernetes, rendered by kustomize', () => {
  it('every object is in the namespace, which enforces the restricted Pod Security Standard', () => {
    const [ns] = ofKind(servers, 'Namespace');
    expect(ns!.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const d of all.filter((x) => x.kind !== 'Namespace'))
      expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBe(ns!.metadata.name);
  });

  it('one image, named and tagged by the kustomizations, in every container', () => {
    const images = new Set(workloads.flatMap((d) => containersOf(d).map(({ c }) => c.image as string)));
    expect(images.size).toBe(1);
    const [image] = images;
    expect(image).toMatch(/^[a-z0-9.-]+(:[0-9]+)?\/[a-z0-9/._-]+:[\w.-]+$/); // registry/name:tag, not a bare name
    const entries = ['kustomization.yaml', 'index-build/kustomization.yaml'].map(
      (f) => (parseYaml(readFileSync(join(K8S, f), 'utf8')) as Doc).images,
    );
    expect(entries[1]).toEqual(entries[0]);
    expect(image).toBe(`${entries[0][0].newName}:${entries[0][0].newTag}`);
  });

  it('every pod meets the restricted Pod Security Standard', () => {
    const allowedVolumes = [
      'configMap',
      'csi',
      'downwardAPI',
      'emptyDir',
      'ephemeral',
      'persistentVolumeClaim',
      'projected',
      'secret',
    ];
    for (const d of workloads) {
      const pod = d.spec.template.spec as Doc;
      const what = `${d.kind}/${d.metadata.name}`;
      expect(pod.hostNetwork ?? false, what).toBe(false);
      expect(pod.hostPID ?? false, what).toBe(false);
      expect(pod.hostIPC ?? false, what).toBe(false);
      for (const v of pod.volumes ?? [])
        expect(
          Object.keys(v)
            .filter((k) => k !== 'name')
            .every((k) => allowedVolumes.includes(k)),
          `${what} volume ${v.name}`,
        ).toBe(true);
      for (const { c } of containersOf(d)) {
        const sc = (c.securityContext ?? {}) as Doc;
        const psc = (pod.securityContext ?? {}) as Doc;
        const where = `${what} container ${c.name}`;
        expect(sc.privileged ?? false, where).toBe(false);
        expect(sc.allowPrivilegeEscalation, where).toBe(false);
        expect(sc.capabilities?.drop, where).toContain('ALL');
        expect(
          (sc.capabilities?.add ?? []).every((x: string) => x === 'NET_BIND_SERVICE'),
          where,
        ).toBe(true);
        expect(sc.runAsNonRoot ?? psc.runAsNonRoot, where).toBe(true);
        expect(sc.runAsUser ?? psc.runAsUser, where).not.toBe(0);
        expect(['RuntimeDefault', 'Localhost'], where).toContain((sc.seccompProfile ?? psc.seccompProfile)?.type);
        expect(sc.readOnlyRootFilesystem, where).toBe(true);
        for (const p of c.ports ?? []) expect(p.hostPort, where).toBeUndefined();
      }
    }
  });

  it('every claim a pod mounts is defined', () => {
    const claims = new Set(ofKind(servers, 'PersistentVolumeClaim').map((d) => d.metadata.name as string));
    const used = workloads.flatMap((d) =>
      (d.spec.template.spec.volumes as Doc[])
        .filter((v) => v.persistentVolumeClaim)
        .map((v) => v.persistentVolumeClaim.claimName as string),
    );
    expect(used.length).toBeGreaterThan(0);
    for (const claim of used) expect(claims, claim).toContain(claim);
  });

  it('the index Jobs write where the Deployment serves from, with the corpus, --audio-root and --tokenizer', () => {
    const dep = named(servers, 'Deployment', 'flanstream');
    const [server] = containersOf(dep);
    const served = argAfter(expand(server!.c.args, containerEnv(server!.c, all)), '--index')!;
    const servedOn = onVolume(server!.pod, server!.c, served);
    expect(servedOn.readOnly).toBe(true);
    const parts = named(build, 'Job', 'flanstream-index-parts');
    const merge = named(build, 'Job', 'flanstream-index-merge');
    expect(parts.spec.completionMode).toBe('Indexed');
    const flags: Record<string, string | undefined>[] = [];
    for (const job of [parts, merge]) {
      const [{ pod, c }] = containersOf(job) as [{ pod: Doc; c: Doc }];
      const env = containerEnv(c, all, { completionIndex: 0 });
      const args = expand(c.args, env);
      expect(args[0]).toBe('index');
      expect(args.join(' ')).not.toMatch(/\$\(/);
      const out = argAfter(args, '--out')!;
      expect(out).toBe(served);
      expect(onVolume(pod, c, out)).toEqual({ ...servedOn, readOnly: false });
      expect(onVolume(pod, c, args[1]!).claim).toBe('flanstream-corpus');
      flags.push({
        tokenizer: argAfter(args, '--tokenizer'),
        audioRoot: argAfter(args, '--audio-root'),
        corpus: args[1],
      });
      if (job === parts) {
        expect(argAfter(args, '--part')).toBe(`0/${parts.spec.completions}`);
        expect(env.PARTS).toBe(String(parts.spec.completions));
      } else {
        expect(args).toContain('--merge');
        expect(Number(argAfter(args, '--wait'))).toBeGreaterThan(0);
        expect(Number(argAfter(args, '--wait'))).toBeLessThan(merge.spec.activeDeadlineSeconds);
      }
    }
    expect(flags[0]!.tokenizer).toBeTruthy();
    expect(flags[0]!.audioRoot).toBeTruthy();
    expect(flags[1]).toEqual(flags[0]);
  });

  it('the token key and bearer tokens come from the Secret; ServiceMonitor and NetworkPolicy match the HTTP port', () => {
    const dep = named(servers, 'Deployment', 'flanstream');
    const [{ c }] = containersOf(dep) as [{ pod: Doc; c: Doc }];
    const env = containerEnv(c, all);
    const secret = dataOf(named(servers, 'Secret', 'flanstream-auth'));
    expect(env.FLANSTREAM_SERVER_TOKEN_KEY).toBe(secret.FLANSTREAM_SERVER_TOKEN_KEY);
    expect(env.FLANSTREAM_SERVER_AUTH_TOKENS).toBe(secret.FLANSTREAM_SERVER_AUTH_TOKENS);

    const podLabels = dep.spec.template.metadata.labels as Record<string, string>;
    const svc = named(servers, 'Service', 'flanstream');
    const [sm] = ofKind(servers, 'ServiceMonitor');
    const subset = (sel: Record<string, string>, labels: Record<string, string>): boolean =>
      Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(subset(sm!.spec.selector.matchLabels, svc.metadata.labels)).toBe(true);
    const httpPort = (c.ports as Doc[]).find((p) => p.name === 'http')!;
    const svcPort = (svc.spec.ports as Doc[]).find((p) => p.name === sm!.spec.endpoints[0].port)!;
    expect(svcPort.targetPort).toBe('http');
    expect(sm!.spec.endpoints[0].path).toBe(dep.spec.template.metadata.annotations['prometheus.io/path']);
    expect(Number(dep.spec.template.metadata.annotations['prometheus.io/port'])).toBe(httpPort.containerPort);

    const [np] = ofKind(servers, 'NetworkPolicy');
    expect(subset(np!.spec.podSelector.matchLabels, podLabels)).toBe(true);
    expect(np!.spec.policyTypes).toEqual(['Ingress']);
    const rules = np!.spec.ingress as Doc[];
    const forPort = (name: string): Doc[] => rules.filter((r) => (r.ports as Doc[]).some((p) => p.port === name));
    // gRPC from anywhere (trainers); HTTP only from selected peers (Prometheus), never from everyone.
    expect(forPort('grpc').some((r) => r.from === undefined)).toBe(true);
    expect(forPort('http').length).toBeGreaterThan(0);
    for (const r of forPort('http')) expect(r.from?.length).toBeGreaterThan(0);
  });
});
