/**
 * Soak phases for the transport: calls ended every way a raw HTTP/2 client can end them
 * (test/helpers/h2_call_ends.py, python3-h2) must give back every slot, and 20,000 silent TCP
 * connections must not stop health, /healthz or streams. Each phase runs its own server child
 * (small max_streams, short handshake deadline) and reports RSS, file descriptors and the worst
 * event-loop delay; problems are returned as strings for soak.ts to fail on.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { dataServiceDefinition, loadDefinition } from '../../src/server/proto.js';
import { check, healthClient } from '../ops/helpers/grpc.js';
import { activeStreamsAt, fdsOf, rssOf, sleep, spawnServer, type ChildServer } from './procs.js';

const SCRIPT = fileURLToPath(new URL('../helpers/h2_call_ends.py', import.meta.url));
const MODES = ['rst-no-error', 'rst-cancel', 'rst-internal', 'close', 'goaway-close', 'goaway-error'];
const SPEC = { spec: { split: 'train', batchSize: 2, seqLen: 1024, packing: 'packed', seed: 9 } };

export interface PhaseResult {
  readonly lines: string[];
  readonly problems: string[];
}

const mb = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MB`;
const measure = (s: ChildServer): string =>
  `RSS ${mb(rssOf(s.child.pid!))}, ${fdsOf(s.child.pid!)} fds, worst event-loop delay ${s.maxLagMs().toFixed(0)} ms`;

/** Item: every way a call ends frees its slot. `rounds` × each mode, 2 × max_streams streams each. */
export async function callEndsPhase(index: string, rounds: number, log: (s: string) => void): Promise<PhaseResult> {
  const maxStreams = 16;
  const server = await spawnServer(index, { 'server.max_streams': String(maxStreams) });
  const hex = (dataServiceDefinition(loadDefinition()).StreamBatches!.requestSerialize(SPEC) as Buffer).toString('hex');
  const problems: string[] = [];
  const lines = [`call ends: start ${measure(server)}`];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const mode of MODES) {
        const child = spawn(
          '/usr/bin/python3',
          [SCRIPT, '127.0.0.1', String(server.port), mode, String(2 * maxStreams), hex],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        );
        const exited = once(child, 'exit');
        await once(createInterface({ input: child.stdout }), 'line');
        let active = await activeStreamsAt(server.httpPort);
        for (let i = 0; i < 250 && active !== 0; i++) {
          await sleep(20);
          active = await activeStreamsAt(server.httpPort);
        }
        if (active !== 0) problems.push(`call ends: ${active} streams still active after ${mode} (round ${r})`);
        child.stdin.end();
        await exited;
      }
      if (r % 10 === 9) log(`call ends: round ${r + 1}/${rounds}: ${measure(server)}`);
    }
    lines.push(`call ends: ${rounds} rounds × ${MODES.length} ways × ${2 * maxStreams} streams: ${measure(server)}`);
  } finally {
    await server.kill();
  }
  return { lines, problems };
}

/** Item: 20,000 silent TCP connections while health Check and /healthz are polled. */
export async function idleConnectionsPhase(
  index: string,
  total: number,
  log: (s: string) => void,
): Promise<PhaseResult> {
  const server = await spawnServer(index, { 'server.handshake_timeout_ms': '2000' });
  const problems: string[] = [];
  const lines = [`idle connections: start ${measure(server)}`];
  const health = healthClient(server.target, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  });
  let worstHealth = 0;
  let worstHealthz = 0;
  let probes = 0;
  let stop = false;
  const prober = (async () => {
    while (!stop) {
      const t0 = Date.now();
      try {
        await check(health);
        worstHealth = Math.max(worstHealth, Date.now() - t0);
        const t1 = Date.now();
        const res = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
        if (res.status !== 200) problems.push(`idle connections: /healthz answered ${res.status}`);
        worstHealthz = Math.max(worstHealthz, Date.now() - t1);
        probes++;
      } catch (err) {
        problems.push(`idle connections: a probe failed (${String(err)})`);
      }
      await sleep(100);
    }
  })();
  const held: Socket[] = [];
  try {
    let peakFds = 0;
    for (let opened = 0; opened < total;) {
      const wave = Math.min(500, total - opened);
      await Promise.all(
        Array.from(
          { length: wave },
          () =>
            new Promise<void>((resolve) => {
              const s = connect(server.port, '127.0.0.1');
              s.on('error', () => resolve());
              s.once('connect', () => resolve());
              held.push(s);
            }),
        ),
      );
      opened += wave;
      peakFds = Math.max(peakFds, fdsOf(server.child.pid!));
      if (opened % 5000 === 0) log(`idle connections: ${opened}/${total} attempted: ${measure(server)}`);
    }
    lines.push(
      `idle connections: ${total} attempted; server peak ${peakFds} fds; ${probes} probes, worst health Check ${worstHealth} ms, worst /healthz ${worstHealthz} ms; ${measure(server)}`,
    );
  } finally {
    stop = true;
    await prober;
    health.close();
    for (const s of held) s.destroy();
    await server.kill();
  }
  return { lines, problems };
}
