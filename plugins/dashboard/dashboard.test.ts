import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, SKIP_BROWSER as SKIP } from '../../test/fixtures/chromium.js';
import { createTestKit, type TestProxy, waitFor } from '../../testing/index.js';

/**
 * The page in headless Chromium (Debian package `chromium`) against a running proxy.
 * Without Chromium these tests fail with a message, unless SWITCHYARD_SKIP_BROWSER=1.
 */
if (SKIP) console.warn('dashboard browser tests skipped: SWITCHYARD_SKIP_BROWSER=1');

const TOKEN = 'dashboard-test-token-0123456789';
const TIMEOUT = 10_000;

interface AdminApi {
  address(): string | null;
}
interface ForceDisconnect {
  state(): { enabled: boolean };
}

describe.skipIf(SKIP)('dashboard in a browser', () => {
  let browser: Browser;
  let context: BrowserContext | undefined;
  let page: Page;
  const kit = createTestKit();
  let proxy: TestProxy;
  let pageErrors: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  afterEach(async () => {
    await context?.close();
    context = undefined;
    await kit.close();
    expect(pageErrors).toEqual([]);
    pageErrors = [];
  });

  /** A proxy with two echo backends, admin-api with a token, the dashboard polling every 250 ms. */
  async function start(extraPlugins = 'force-disconnect: {}', adminOptions = ''): Promise<[string, string]> {
    const servers = await Promise.all([kit.echo(), kit.echo()]);
    proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends:
  - address: ${servers[0]!.address}
  - address: ${servers[1]!.address}
plugins:
  admin-api: { listen: "127.0.0.1:0", token: "${TOKEN}"${adminOptions} }
  dashboard: { refresh: 250ms }
  ${extraPlugins}
`);
    await openPage();
    return [servers[0]!.address, servers[1]!.address];
  }

  async function openPage(): Promise<void> {
    context = await browser.newContext();
    page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Uncaught/.test(msg.text()))
        pageErrors.push(msg.text());
    });
    const address = proxy.runtime.use<AdminApi>('admin-api')!.address();
    await page.goto(`http://${address}/`);
  }

  const row = (address: string) => `tr[data-backend="${address}"]`;
  const cell = (address: string, col: string) => `${row(address)} td[data-col="${col}"]`;

  /** Waits until the element's text is `text` (the page re-renders on every poll). */
  async function textIs(selector: string, text: string): Promise<void> {
    await page.waitForFunction(
      ([sel, want]) => (globalThis as any).document.querySelector(sel!)?.textContent === want,
      [selector, text] as const,
      { timeout: TIMEOUT },
    );
  }

  async function enterToken(token: string): Promise<void> {
    await page.fill('#token', token);
    await page.click('#token-save');
  }

  it('shows the backends of the running proxy and follows a session live', async () => {
    const [a, b] = await start();
    await page.waitForSelector(row(a));
    await page.waitForSelector(row(b));
    expect(await page.textContent(cell(a, 'state'))).toBe('up');
    expect(await page.textContent(cell(a, 'weight'))).toBe('1');
    expect(await page.textContent(cell(a, 'active'))).toBe('0');
    expect(await page.textContent('section[data-service="default"] h2')).toContain(proxy.address);
    expect(await page.textContent('#freshness')).toContain('live');
    // Read-only until a token is entered: no action buttons.
    expect(await page.isVisible(`${row(a)} button[data-action="drain"]`)).toBe(false);

    const client = await kit.connect(proxy);
    await client.send(Buffer.alloc(2048, 7));
    await client.read(2048);
    const backend = proxy.service.sessions.values().next().value!.backend!.address;
    await textIs(cell(backend, 'active'), '1');
    await textIs('td[data-col="sessions"]', '1');
    // Bytes of the open session show before it closes.
    await textIs(cell(backend, 'bytes-in'), '2.00 KiB');
    await textIs(cell(backend, 'bytes-out'), '2.00 KiB');

    // Rates are computed in the page between two polls.
    await page.waitForFunction(
      (sel) =>
        /^\d.* B\/s$|^\d.*iB\/s$/.test((globalThis as any).document.querySelector(sel)?.textContent ?? ''),
      cell(backend, 'in-rate'),
    );
    await textIs('tfoot td[data-col="active"]', '1');

    await client.end();
    await textIs(cell(backend, 'active'), '0');
    await textIs(cell(backend, 'total'), '1');
    await textIs('td[data-col="closed"]', '1');
    await textIs('td[data-col="accepted"]', '1');
  });

  it('drains and undrains a backend with the token (checked in the registry)', async () => {
    const [a] = await start();
    await page.waitForSelector(row(a));
    await enterToken(TOKEN);
    await page.click(`${row(a)} button[data-action="drain"]`);
    await waitFor(
      () => proxy.service.backends.get(a)?.state === 'draining',
      TIMEOUT,
      'drained in the registry',
    );
    await textIs(cell(a, 'state'), 'draining');
    // The token stays for this tab: a reload keeps the buttons.
    await page.reload();
    await page.click(`${row(a)} button[data-action="undrain"]`);
    await waitFor(() => proxy.service.backends.get(a)?.state === 'up', TIMEOUT, 'undrained in the registry');
    await textIs(cell(a, 'state'), 'up');
    expect(await page.textContent('#errors')).toBe('');
  });

  it('shows the API error for a wrong token and changes nothing', async () => {
    const [a] = await start();
    await page.waitForSelector(row(a));
    await enterToken('not-the-token');
    await page.click(`${row(a)} button[data-action="drain"]`);
    await page.waitForSelector('#errors .error');
    const error = await page.textContent('#errors .error');
    expect(error).toContain('401');
    expect(error).toContain('invalid token');
    expect(error).toContain(`/backends/${encodeURIComponent(a)}`);
    expect(proxy.service.backends.get(a)!.state).toBe('up');
    // Polls carry the token too, so the page says it is not updating, and why.
    await page.waitForFunction(() =>
      (globalThis as any).document.querySelector('#freshness')?.textContent?.includes('invalid token'),
    );

    // Forgetting the token brings the read-only view back.
    await page.click('#token-forget');
    await page.waitForFunction(() =>
      (globalThis as any).document.querySelector('#freshness')?.textContent?.startsWith('live'),
    );
    expect(await page.isVisible(`${row(a)} button[data-action="drain"]`)).toBe(false);
  });

  it('loads without a token when the admin API is closed to readers, and asks for one', async () => {
    const [a] = await start('', ', read_only_open: false');
    await page.waitForFunction(() =>
      (globalThis as any).document.querySelector('#freshness')?.textContent?.includes('401 missing token'),
    );
    expect(await page.$(row(a))).toBeNull();
    await enterToken(TOKEN);
    await page.waitForSelector(row(a));
    await page.waitForFunction(() =>
      (globalThis as any).document.querySelector('#freshness')?.textContent?.startsWith('live'),
    );
  });

  it('switches force-disconnect on and off', async () => {
    const [a] = await start();
    await page.waitForSelector(row(a));
    await textIs('#force-state', 'off');
    const client = await kit.connect(proxy);
    await client.send('x');
    await client.read(1);
    expect(await page.isVisible('#force-on')).toBe(false);

    await enterToken(TOKEN);
    await page.click('#force-on');
    const fd = proxy.runtime.use<ForceDisconnect>('force-disconnect')!;
    await waitFor(() => fd.state().enabled, TIMEOUT, 'force-disconnect on');
    await waitFor(() => client.isClosed || client.ended, TIMEOUT, 'the open session to be closed');
    await textIs('#force-state', 'ON (new connections refused)');
    expect(await page.textContent('#force-detail')).toContain('1 sessions closed');
    expect(await page.isVisible('#force-on')).toBe(false);

    await page.click('#force-off');
    await waitFor(() => !fd.state().enabled, TIMEOUT, 'force-disconnect off');
    await textIs('#force-state', 'off');
  });

  it('hides the force-disconnect controls when that plugin is not enabled', async () => {
    const [a] = await start('');
    await page.waitForSelector(row(a));
    await enterToken(TOKEN);
    await page.waitForSelector(`${row(a)} button[data-action="drain"]`);
    expect(await page.isVisible('#force')).toBe(false);
  });

  it('removes a backend after confirmation, and changes a weight', async () => {
    const [a, b] = await start();
    await page.waitForSelector(row(a));
    await enterToken(TOKEN);

    page.once('dialog', (d) => void d.dismiss());
    await page.click(`${row(b)} button[data-action="remove"]`);
    page.once('dialog', (d) => void d.accept());
    await page.click(`${row(b)} button[data-action="remove"]`);
    await waitFor(() => proxy.service.backends.get(b) === undefined, TIMEOUT, 'removed from the registry');
    await page.waitForSelector(row(b), { state: 'detached' });

    page.once('dialog', (d) => void d.accept('5'));
    await page.click(`${row(a)} button[data-action="weight"]`);
    await waitFor(() => proxy.service.backends.get(a)?.weight === 5, TIMEOUT, 'weight 5');
    await textIs(cell(a, 'weight'), '5');

    page.once('dialog', (d) => void d.accept('500'));
    await page.click(`${row(a)} button[data-action="weight"]`);
    await page.waitForSelector('#errors .error');
    expect(await page.textContent('#errors .error')).toContain('weight must be an integer from 1 to 256');
    expect(proxy.service.backends.get(a)!.weight).toBe(5);
  });

  it('puts every server value into the page as text, never as markup', async () => {
    const [a] = await start();
    const evil = '<img src=x onerror="window.__pwned=1">';
    proxy.service.setBackendStatus(proxy.service.backends.get(a)!, evil, '<b>down</b>');
    await page.waitForSelector(`${row(a)} .badge`);
    expect(await page.textContent(`${row(a)} .badge`)).toBe(`${evil}: <b>down</b>`);
    expect(await page.$$eval('img, b', (els) => els.length)).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('shows health and breaker statuses with their tone', async () => {
    const [a, b] = await start();
    const service = proxy.service;
    service.setBackendStatus(service.backends.get(a)!, 'health-check', 'down');
    service.setBackendStatus(service.backends.get(b)!, 'circuit-breaker', 'half-open');
    await page.waitForSelector(`${row(a)} .badge[data-source="health-check"][data-tone="bad"]`);
    await page.waitForSelector(`${row(b)} .badge[data-source="circuit-breaker"][data-tone="warn"]`);
    expect(await page.getAttribute(row(a), 'data-tone')).toBe('bad');
    expect(await page.textContent(cell(a, 'since'))).toMatch(/^\d+s$/);
  });
});
