import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { StatusJson } from '../../src/server/status-page.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { ROOT } from './helpers/dist.js';
import { collect, dataClient, httpGet, sleep, type Collected, type DataClient } from './helpers/grpc.js';

const CHROMIUM = '/usr/bin/chromium';

// The functions given to page.evaluate/waitForFunction run in the browser; the project compiles
// without the DOM library, so declare the little of it they use (module-scoped).
interface BrowserElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): BrowserElement | null;
}
declare const document: {
  body: BrowserElement;
  querySelector(selector: string): BrowserElement | null;
  querySelectorAll(selector: string): { length: number };
};
const ARTIFACTS = join(ROOT, 'test-artifacts');

/**
 * The live status page in a real headless Chromium: it loads (our own script, no other origin),
 * shows the corpus, lists the open streams, and its charts move as batches flow. A screenshot is
 * kept in test-artifacts/status-page.png.
 */
describe('status page (headless chromium)', () => {
  let ts: TestServer;
  let c: DataClient;
  let ctx: BrowserContext;
  let page: Page;
  let profile: string;
  const calls: grpc.ClientDuplexStream<object, unknown>[] = [];
  let streams: Promise<Collected>[] = [];
  const foreign: string[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} (Debian's chromium package; .ci/run installs it)`).toBe(true);
    ts = await startTestServer(inject('sampleIndex'));
    c = dataClient(ts.target);
    profile = mkdtempSync(join(tmpdir(), 'flanstream-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1300, height: 1100 },
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    const origin = `http://127.0.0.1:${ts.server.httpPort}`;
    page.on('request', (r) => {
      if (!r.url().startsWith(`${origin}/`)) foreign.push(r.url());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
  });
  afterAll(async () => {
    for (const call of calls) call.cancel();
    await Promise.all(streams);
    await ctx?.close();
    c?.close();
    await ts?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const snapshot = (
    id: string,
  ): Promise<{
    step: string;
    realized: string | null;
    recent: string | null;
    legend: string;
    target: string | null;
    fill: string | null;
    tokens: string | null;
  }> =>
    page.evaluate((sid) => {
      const card = document.querySelector(`[data-stream="${sid}"]`);
      const attr = (sel: string): string | null => card?.querySelector(sel)?.getAttribute('d') ?? null;
      return {
        step: card?.querySelector('[data-role="step"]')?.textContent ?? '',
        realized: attr('svg.mixture path.realized[data-domain="speech"]'),
        recent: attr('svg.mixture path.recent[data-domain="speech"]'),
        legend: card?.querySelector('.legend span[data-domain="speech"]')?.textContent ?? '',
        target: attr('svg.mixture path.target[data-domain="speech"]'),
        fill: attr('svg.fill path'),
        tokens: attr('svg.throughput path'),
      };
    }, id);

  it('loads, shows the corpus and lists the open streams; the charts move as batches flow', async () => {
    // Two streams read at a steady pace; the first changes its mixture at step 40 (the target line moves too).
    const specs = [
      {
        spec: {
          split: 'train',
          batchSize: 4,
          seqLen: 1024,
          packing: 'packed',
          seed: 1,
          mixture: { weights: { speech: 1, music: 1, audio: 1 } },
        },
        updates: [{ weights: { speech: 4, music: 1, audio: 1 }, applyAtStep: 40 }],
      },
      { spec: { split: 'train', batchSize: 2, seqLen: 2048, packing: 'multiturn', seed: 2 } },
    ];
    streams = specs.map((s) => collect(c, s, { onCall: (call) => calls.push(call), onBatch: () => sleep(40) }));
    let status: StatusJson | undefined;
    const statusUrl = `http://127.0.0.1:${ts.server.httpPort}/status.json`;
    while (!status || status.streams.length < 2 || status.streams.some((s) => s.batches === 0)) {
      await sleep(50);
      status = (await (await httpGet(statusUrl)).json()) as StatusJson;
    }
    const ids = status.streams.map((s) => s.id).sort();

    const res = await page.goto(`http://127.0.0.1:${ts.server.httpPort}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toMatch(/script-src 'self'/);
    await page.waitForFunction(
      () =>
        document.querySelectorAll('[data-stream]').length === 2 && document.querySelector('#domains tbody tr') !== null,
    );
    expect((await page.$$eval('[data-stream]', (els) => els.map((e) => e.getAttribute('data-stream')))).sort()).toEqual(
      ids,
    );
    expect(await page.textContent('#stream-count')).toBe('2');
    expect(await page.$$eval('#domains tbody tr', (rows) => rows.map((r) => r.getAttribute('data-domain')))).toEqual([
      'speech',
      'music',
      'audio',
    ]);
    expect(await page.textContent('[data-role="tasks"]')).toBe('80');
    expect(await page.textContent('#state')).toBe('serving');

    const first = ids[0]!;
    const before = await snapshot(first);
    expect(before.realized).toMatch(/^M/);
    expect(before.target).toMatch(/^M/);
    const polls = Number(await page.getAttribute('body', 'data-polls'));
    await page.waitForFunction((p) => Number(document.body.getAttribute('data-polls')) >= p + 2, polls);
    await page.waitForFunction(
      (id) => Number(document.querySelector(`[data-stream="${id}"] [data-role="step"]`)?.textContent) >= 45,
      first,
      { timeout: 30_000 },
    );
    const after = await snapshot(first);
    expect(Number(after.step)).toBeGreaterThan(Number(before.step));
    expect(after.realized).not.toBe(before.realized);
    expect(after.target).not.toBe(before.target);
    // The update shows at its step: a recent-window line per domain, and the share since step 40.
    expect(after.recent).toMatch(/^M/);
    expect(after.recent).not.toBe(before.recent);
    expect(after.legend).toMatch(/since step 40 [\d.]+%/);
    expect(after.fill).toMatch(/^M/);
    expect(after.tokens).toMatch(/^M/);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);

    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('drops a stream from the page when it closes', async () => {
    calls[1]?.cancel();
    await page.waitForFunction(() => document.querySelectorAll('[data-stream]').length === 1, undefined, {
      timeout: 10_000,
    });
    expect(await page.textContent('#stream-count')).toBe('1');
  });

  it('shows a closed-loop policy: its weight and the loss it saw per arm', async () => {
    let call: grpc.ClientDuplexStream<object, unknown> | undefined;
    const spec = {
      split: 'train',
      batchSize: 2,
      seqLen: 1024,
      packing: 'packed',
      seed: 4,
      mixture: {
        weights: { speech: 1, music: 1, audio: 1 },
        policy: 'excess-loss',
        lagSteps: 2,
        reference: { speech: 1, music: 1, audio: 1 },
      },
    };
    const domainOf = ts.server.core.catalog.reader.tasks.map((t) => t.domain);
    streams.push(
      collect(
        c,
        { spec },
        {
          onCall: (x) => {
            call = x;
            calls.push(x);
          },
          onBatch: (b) => {
            const per = new Map<number, number>();
            for (const t of b.turnTask) per.set(t, (per.get(t) ?? 0) + 5);
            call?.write({
              losses: {
                step: b.step,
                losses: [...per].map(([task, tokens]) => ({
                  task,
                  tokens,
                  lossSum: tokens * (domainOf[task] === 'music' ? 5 : 2),
                })),
              },
            });
            return sleep(40);
          },
        },
      ),
    );
    await page.waitForFunction(
      () => document.querySelector('table.policy-arms tr[data-selector="music"]') !== null,
      undefined,
      { timeout: 20_000 },
    );
    const rows = await page.$$eval('table.policy-arms tr[data-selector]', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
    );
    expect(rows.map((r) => r[0])).toEqual(['audio', 'music', 'speech']);
    // Each arm shows the mean loss the policy saw (what was reported for it) or "–" if none was.
    for (const [sel, , loss] of rows) expect(loss, sel).toBe(loss === '–' ? '–' : sel === 'music' ? '5.000' : '2.000');
    expect(rows.some((r) => r[2] !== '–')).toBe(true);
    expect(rows.reduce((a, r) => a + Number.parseFloat(r[1]!), 0)).toBeCloseTo(100, 0);
    expect(errors).toEqual([]);
  });
});
