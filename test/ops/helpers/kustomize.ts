import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './dist.js';

export type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const K8S = join(ROOT, 'config', 'deploy', 'kubernetes');

/** `kubectl kustomize <dir>`: the objects `kubectl apply -k <dir>` would create. */
export function render(dir: string): Doc[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(out).map((d) => d.toJS() as Doc);
}

export const ofKind = (docs: readonly Doc[], kind: string): Doc[] => docs.filter((d) => d.kind === kind);
export const named = (docs: readonly Doc[], kind: string, name: string): Doc => {
  const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!d) throw new Error(`no ${kind} ${name} in the rendered manifests`);
  return d;
};

/** A Secret's or ConfigMap's key/value pairs (stringData and base64 data alike). */
export function dataOf(d: Doc): Record<string, string> {
  const out: Record<string, string> = { ...(d.stringData ?? {}) };
  for (const [k, v] of Object.entries((d.data ?? {}) as Record<string, string>))
    out[k] = d.kind === 'Secret' ? Buffer.from(v, 'base64').toString() : v;
  return out;
}

/**
 * A container's environment as the kubelet builds it from the rendered objects: envFrom
 * (Secret, ConfigMap), then env (values, configMapKeyRef, secretKeyRef, the Job completion index).
 * `secrets` replaces Secret values (an operator's real ones in place of the placeholders).
 */
export function containerEnv(
  c: Doc,
  docs: readonly Doc[],
  opts: { completionIndex?: number; secrets?: Record<string, string> } = {},
): Record<string, string> {
  const secret = (name: string): Record<string, string> => ({
    ...dataOf(named(docs, 'Secret', name)),
    ...(opts.secrets ?? {}),
  });
  const env: Record<string, string> = {};
  for (const f of (c.envFrom ?? []) as Doc[]) {
    if (f.secretRef) Object.assign(env, secret(f.secretRef.name));
    else if (f.configMapRef) Object.assign(env, dataOf(named(docs, 'ConfigMap', f.configMapRef.name)));
    else throw new Error(`unsupported envFrom ${JSON.stringify(f)}`);
  }
  for (const e of (c.env ?? []) as Doc[]) {
    const from = e.valueFrom as Doc | undefined;
    let v: string | undefined;
    if (!from) v = String(e.value);
    else if (from.configMapKeyRef)
      v = dataOf(named(docs, 'ConfigMap', from.configMapKeyRef.name))[from.configMapKeyRef.key];
    else if (from.secretKeyRef) v = secret(from.secretKeyRef.name)[from.secretKeyRef.key];
    else if (
      from.fieldRef?.fieldPath === "metadata.annotations['batch.kubernetes.io/job-completion-index']" &&
      opts.completionIndex !== undefined
    )
      v = String(opts.completionIndex);
    if (v === undefined) throw new Error(`env ${e.name}: cannot resolve ${JSON.stringify(from)}`);
    env[e.name] = v;
  }
  return env;
}

/** `$(VAR)` in a container's command or args, expanded from its environment as the kubelet does. */
export const expand = (args: readonly string[], env: Readonly<Record<string, string>>): string[] =>
  args.map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => env[name] ?? m));

/** Every container (and init container) of a workload's pod template, with the pod spec. */
export function containersOf(d: Doc): { pod: Doc; c: Doc }[] {
  const pod = d.spec?.template?.spec as Doc | undefined;
  if (!pod) return [];
  return [...(pod.initContainers ?? []), ...(pod.containers ?? [])].map((c: Doc) => ({ pod, c }));
}
