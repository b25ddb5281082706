import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, SKIP_BROWSER } from '../../test/fixtures/chromium.js';
import { createTestKit, type TestProxy, waitFor } from '../../testing/index.js';
import type { AdminApi } from './index.js';

/**
 * What a web page the operator opens can make a real browser do to the admin API: the default
 * admin API (loopback, no token) against a page on another loopback origin (127.0.0.2), and
 * against a page whose name resolves to the admin API's address (what DNS rebinding achieves).
 */
if (SKIP_BROWSER) console.warn('admin-api browser tests skipped: SWITCHYARD_SKIP_BROWSER=1');

const TIMEOUT = 10_000;
const BACKENDS = ['127.0.0.1:10001', '127.0.0.1:10002', '127.0.0.1:10003', '127.0.0.1:10004'];

interface ForceDisconnect {
  state(): { enabled: boolean };
}

// Browsers start slowly on a busy machine.
describe.skipIf(SKIP_BROWSER)(
  'admin-api against pages on other origins (Chromium)',
  { timeout: 60_000 },
  () => {
    let browser: Browser;
    let context: BrowserContext | undefined;
    const kit = createTestKit();
    let proxy: TestProxy | undefined;
    let attacker: Server | undefined;
    let admin: string;

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
      proxy = undefined;
      attacker?.closeAllConnections();
      await new Promise((resolve) => (attacker ? attacker.close(resolve) : resolve(undefined)));
      attacker = undefined;
    });

    async function startAdmin(adminOptions = ''): Promise<void> {
      proxy = await kit.proxy(`
listen: 127.0.0.1:0
backends: [${BACKENDS.map((a) => `{ address: "${a}" }`).join(', ')}]
plugins:
  admin-api: { listen: "127.0.0.1:0"${adminOptions} }
  force-disconnect: {}
`);
      admin = `http://${proxy.runtime.use<AdminApi>('admin-api')!.address()}`;
    }

    /** Serves `html` at `/` from 127.0.0.2 (another origin, another site, still loopback). */
    async function startAttacker(html: string): Promise<string> {
      const server = createServer((req, res) => {
        if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
        else res.writeHead(404).end();
      });
      attacker = server;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
      return `http://127.0.0.2:${(server.address() as AddressInfo).port}`;
    }

    async function newPage(): Promise<Page> {
      context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(TIMEOUT);
      return page;
    }

    /**
     * Outcomes of the page's requests to the admin API, as `METHOD path` → status, or the
     * browser's error when it withheld the answer from the page (an image that is JSON is
     * blocked by Chromium's opaque response blocking once the answer's headers arrived).
     */
    function watchAdmin(page: Page): Map<string, number | string> {
      const seen = new Map<string, number | string>();
      const key = (req: Request) => {
        const url = new URL(req.url());
        return url.origin === admin ? `${req.method()} ${url.pathname}${url.search}` : undefined;
      };
      page.on('requestfinished', async (req) => {
        const k = key(req);
        const res = await req.response();
        if (k !== undefined && res !== null) seen.set(k, res.status());
      });
      page.on('requestfailed', (req) => {
        const k = key(req);
        if (k !== undefined && !seen.has(k)) seen.set(k, req.failure()?.errorText ?? 'failed');
      });
      return seen;
    }

    const addresses = () => proxy!.service.backends.list().map((b) => b.address);

    it('a page on another origin changes nothing: img, iframe, fetch and form attacks get 403', async () => {
      await startAdmin();
      const page = await newPage();
      const seen = watchAdmin(page);
      const origin = await startAttacker(`<!doctype html>
<img src="${admin}/remove?address=127.0.0.1:10001">
<iframe src="${admin}/remove?address=127.0.0.1:10002"></iframe>
<iframe name="sink"></iframe>
<form id="add" method="POST" action="${admin}/add" enctype="text/plain" target="sink">
  <input name='{"address":"127.0.0.1:20001","x":"' value='"}'>
</form>
<script>
  fetch('${admin}/remove?address=127.0.0.1:10003', { mode: 'no-cors' });
  fetch('${admin}/force_disconnect', { method: 'POST', mode: 'no-cors', body: '{"enabled":true}' });
  // Needs a CORS preflight, which the admin API never answers: the browser never sends it.
  fetch('${admin}/backends', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"address":"127.0.0.1:20002"}',
  }).catch(() => {});
  document.getElementById('add').submit();
</script>`);
      await page.goto(`${origin}/`);
      const attacks = [
        'GET /remove?address=127.0.0.1:10001',
        'GET /remove?address=127.0.0.1:10002',
        'GET /remove?address=127.0.0.1:10003',
        'POST /force_disconnect',
        'POST /add',
      ];
      // Every attack reached the admin API (so the test would see it act) and was refused there.
      await waitFor(
        () => proxy!.runtime.use<AdminApi>('admin-api')!.refused().crossSite === attacks.length,
        TIMEOUT,
        'the admin API to refuse every attack',
      );
      await waitFor(
        () => attacks.every((a) => seen.has(a)),
        TIMEOUT,
        `answers to ${attacks.join(', ')}`,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; seen: ${JSON.stringify([...seen])}`);
      });
      // The browser saw 403, or withheld the answer from the page (opaque response blocking).
      for (const attack of attacks)
        expect([403, 'net::ERR_BLOCKED_BY_ORB', 'net::ERR_ABORTED'], attack).toContain(seen.get(attack));
      // The JSON POST needed a preflight the admin API does not answer: the browser never sent it.
      expect(seen.get('POST /backends')).toMatch(/^net::/);
      expect(proxy!.runtime.use<AdminApi>('admin-api')!.refused().crossSite).toBe(attacks.length);
      expect(addresses()).toEqual(BACKENDS);
      expect(proxy!.runtime.use<ForceDisconnect>('force-disconnect')!.state().enabled).toBe(false);
    });

    it('a link from another site to GET /remove is refused; the same URL typed by the operator works', async () => {
      await startAdmin();
      const page = await newPage();
      const seen = watchAdmin(page);
      const origin = await startAttacker(
        `<!doctype html><a id="go" href="${admin}/remove?address=127.0.0.1:10004">cute cats</a>`,
      );
      await page.goto(`${origin}/`);
      await Promise.all([page.waitForNavigation(), page.click('#go')]);
      expect(seen.get('GET /remove?address=127.0.0.1:10004')).toBe(403);
      expect(await page.textContent('body')).toContain('cross-site request refused');
      expect(addresses()).toEqual(BACKENDS);

      // Typed in the address bar (Sec-Fetch-Site: none): the operator's own request.
      const typed = await page.goto(`${admin}/remove?address=127.0.0.1:10004`);
      expect(typed?.status()).toBe(200);
      expect(addresses()).toEqual(BACKENDS.slice(0, 3));
    });

    it('after DNS rebinding a page is same-origin with the admin API, and still reads and changes nothing', async () => {
      await startAdmin(', allowed_hosts: [admin.test]');
      const port = new URL(admin).port;
      // What rebinding achieves: the attacker's name resolves to the admin API's address.
      const rebound = await launchChromium([
        '--host-resolver-rules=MAP rebind.test 127.0.0.1, MAP admin.test 127.0.0.1',
      ]);
      try {
        const page = await rebound.newPage();
        page.setDefaultTimeout(TIMEOUT);
        const res = await page.goto(`http://rebind.test:${port}/get`);
        expect(res?.status()).toBe(403);
        const text = await page.textContent('body');
        expect(text).toContain('is not a name this admin API answers to');
        expect(text).not.toContain('10001');
        // Same-origin script on the rebound page: the JSON POST needs no preflight here.
        const status = await page.evaluate(async () => {
          const r = await fetch('/backends', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{"address":"127.0.0.1:20003"}',
          });
          return r.status;
        });
        expect(status).toBe(403);
        expect(addresses()).toEqual(BACKENDS);

        // A name the operator listed works, from the page and its own scripts.
        const own = await page.goto(`http://admin.test:${port}/get`);
        expect(own?.status()).toBe(200);
        const added = await page.evaluate(async () => {
          const r = await fetch('/backends', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{"address":"127.0.0.1:20004"}',
          });
          return r.status;
        });
        expect(added).toBe(201);
        expect(addresses()).toEqual([...BACKENDS, '127.0.0.1:20004']);
      } finally {
        await rebound.close();
      }
    });
  },
);
