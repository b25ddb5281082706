import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, SKIP_BROWSER } from '../../test/fixtures/chromium.js';
import { createTestKit, type TestBackend, type TestProxy } from '../../testing/index.js';

/**
 * The page's history charts, backend states, timeline, topology and action gating, in headless
 * Chromium at a phone's width (390 px) and a desktop's (1440 px), with screenshots under a
 * temporary folder (removed afterwards). SWITCHYARD_DASHBOARD_SCREENSHOTS=<folder> keeps a copy
 * of each there: docs/img/dashboard.png is the wide one.
 */
const TIMEOUT = 15_000;
const WIDTHS = [
  ['narrow', 390, 844],
  ['wide', 1440, 1000],
] as const;

interface AdminApi {
  address(): string | null;
}

/** What the page's elements are read as here (the tests compile without the DOM library). */
interface PageElement {
  dataset: Record<string, string | undefined>;
  getBoundingClientRect(): { width: number };
}
/** The page's globals, inside evaluate callbacks. */
declare const document: any, window: any;

describe.skipIf(SKIP_BROWSER)('dashboard charts, states, timeline and topology in a browser', () => {
  let browser: Browser;
  let context: BrowserContext | undefined;
  let page: Page;
  const kit = createTestKit();
  let proxy: TestProxy;
  let servers: TestBackend[] = [];
  let pageErrors: string[] = [];
  const shots = mkdtempSync(join(tmpdir(), 'switchyard-dashboard-'));

  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    rmSync(shots, { recursive: true, force: true });
  });

  afterEach(async () => {
    await context?.close();
    context = undefined;
    await kit.close();
    expect(pageErrors).toEqual([]);
    pageErrors = [];
  });

  /** Two echo backends under health checks every 100 ms, metrics for connect times, no admin token. */
  async function start(admin = '{ listen: "127.0.0.1:0" }'): Promise<void> {
    servers = await Promise.all([kit.echo(), kit.echo()]);
    proxy = await kit.proxy(`
services:
  web:
    listen: 127.0.0.1:0
    backends:
      - address: ${servers[0]!.address}
      - address: ${servers[1]!.address}
        weight: 2
    plugins:
      least-connections: {}
      health-check: { interval: 100ms, timeout: 100ms, rise: 1, fall: 1, jitter: 0 }
      circuit-breaker: { consecutive_failures: 3 }
plugins:
  admin-api: ${admin}
  dashboard: { refresh: 250ms, history: { interval: 250ms, window: 2m } }
  metrics: {}
  force-disconnect: {}
`);
  }

  async function open(width: number, height: number): Promise<void> {
    context = await browser.newContext({ viewport: { width, height } });
    page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Uncaught|Refused/.test(msg.text()))
        pageErrors.push(msg.text());
    });
    await page.goto(`http://${proxy.runtime.use<AdminApi>('admin-api')!.address()}/`);
  }

  /** Sessions with bytes each way, one every 300 ms, so every series has points in several samples. */
  async function traffic(sessions: number): Promise<void> {
    for (let i = 0; i < sessions; i++) {
      const client = await kit.connect(proxy);
      await client.send(Buffer.alloc(20_000 + i * 5000, 7));
      await client.read(20_000 + i * 5000);
      await client.end();
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  const row = (address: string) => `tr[data-backend="${address}"]`;

  async function until(fn: string, arg: unknown = null): Promise<void> {
    await page.waitForFunction(new Function('arg', fn) as (arg: unknown) => boolean, arg, {
      timeout: TIMEOUT,
    });
  }

  for (const [name, width, height] of WIDTHS) {
    it(`draws history charts, states, the timeline and the topology (${name}, ${width} px)`, async () => {
      await start();
      // The proxy keeps samples before the page opens: a fresh page shows the past.
      await traffic(6);
      await open(width, height);
      const [a, b] = servers.map((s) => s.address) as [string, string];

      // Charts: four per service, each a uPlot canvas with points taken before the page opened.
      await until(
        `return document.querySelectorAll('.chart[data-service="web"] canvas').length === 4 &&
          Number(document.querySelector('.chart[data-chart="sessions"]')?.dataset.samples) >= 5`,
      );
      const charts = await page.$$eval('.chart', (els) =>
        els.map((e) => ({
          id: (e as unknown as PageElement).dataset.chart,
          points: Number((e as unknown as PageElement).dataset.points),
          width: (e as unknown as PageElement).getBoundingClientRect().width,
        })),
      );
      expect(charts.map((c) => c.id)).toEqual(['sessions', 'new', 'bytes', 'connect']);
      for (const c of charts) expect(c.points, c.id).toBeGreaterThan(c.id === 'connect' ? 1 : 3);
      for (const c of charts) expect(c.width).toBeLessThanOrEqual(width);
      const titles = await page.$$eval('.chart .u-title', (els) => els.map((e) => e.textContent));
      expect(titles).toEqual(['Sessions', 'New sessions/s', 'Bytes/s', 'Connect time (ms)']);
      // The legend names the backends.
      expect(await page.textContent('.chart[data-chart="sessions"] .u-legend')).toContain(a);

      // No token configured: no read-only message, the actions are there.
      await until(`return document.querySelector('#token-state')?.dataset.mode === 'open'`);
      expect(await page.textContent('#token-state')).toContain('No admin token is configured');
      expect(await page.textContent('body')).not.toContain('Read-only');
      expect(await page.isVisible('#token-fields')).toBe(false);
      expect(await page.isVisible(`${row(a)} button[data-action="drain"]`)).toBe(true);

      // One state per backend; the topology draws listener → service → backends.
      expect(await page.textContent(`${row(a)} td[data-col="state"]`)).toBe('up');
      expect(await page.$$eval('.topology .node[data-kind="listener"]', (els) => els.length)).toBe(1);
      expect(await page.textContent('.topology .node[data-kind="service"]')).toContain('least-connections');
      expect(
        await page.$$eval('.topology .node[data-kind="backend"]', (els) =>
          els.map((e) => (e as unknown as PageElement).dataset.address),
        ),
      ).toEqual([a, b]);

      // The backend goes away: health checks mark it down; its state, colour and the timeline say so.
      await servers[1]!.close();
      await until(
        `return document.querySelector(arg + ' td[data-col="state"]')?.textContent === 'down'`,
        row(b),
      );
      expect(await page.getAttribute(row(b), 'data-tone')).toBe('bad');
      expect(await page.getAttribute(`${row(b)} td[data-col="state"]`, 'title')).toBe('health-check: down');
      await until(
        `return [...document.querySelectorAll('#timeline li[data-source="health-check"][data-status="down"]')]
          .some((li) => li.dataset.backend === arg)`,
        b,
      );
      const entry = await page.textContent(`#timeline li[data-backend="${b}"][data-status="down"]`);
      expect(entry).toContain('health-check: up → down');
      expect(entry).toMatch(/ECONNREFUSED|refused/);
      expect(await page.getAttribute(`.topology .node[data-address="${b}"]`, 'data-condition')).toBe('down');

      // The page fits the window: nothing but the tables scrolls sideways.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);

      const file = join(shots, `dashboard-${name}.png`);
      await page.screenshot({ path: file, fullPage: name === 'narrow' });
      expect(statSync(file).size).toBeGreaterThan(20_000);
      const keep = process.env.SWITCHYARD_DASHBOARD_SCREENSHOTS;
      if (keep) {
        mkdirSync(keep, { recursive: true });
        copyFileSync(file, join(keep, `dashboard-${name}.png`));
      }
    });
  }

  it('shows the read-only message only when a token is required, and enables actions with it', async () => {
    await start('{ listen: "127.0.0.1:0", token: "charts-test-token-0123456789" }');
    await open(1440, 900);
    const a = servers[0]!.address;
    await page.waitForSelector(row(a));
    await until(`return document.querySelector('#token-state')?.dataset.mode === 'read-only'`);
    expect(await page.textContent('#token-state')).toContain('Read-only: enter the admin token');
    expect(await page.isVisible(`${row(a)} button[data-action="drain"]`)).toBe(false);
    await page.fill('#token', 'charts-test-token-0123456789');
    await page.click('#token-save');
    await page.waitForSelector(`${row(a)} button[data-action="drain"]`, { state: 'visible' });
    expect(await page.textContent('#token-state')).toContain('Token set');
  });
});
