import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/**
 * Headless Chromium (Debian package `chromium`) for tests that need a real browser: the
 * dashboard, and the admin API's defences against pages on other origins. Without Chromium
 * these tests fail with a message, unless SWITCHYARD_SKIP_BROWSER=1.
 */
export const CHROMIUM = process.env.SWITCHYARD_CHROMIUM ?? '/usr/bin/chromium';
export const SKIP_BROWSER = process.env.SWITCHYARD_SKIP_BROWSER === '1';

/** Launches Chromium; `args` adds flags (e.g. `--host-resolver-rules=...`). */
export async function launchChromium(args: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install the Debian package (apt-get install -y chromium), ` +
        'point SWITCHYARD_CHROMIUM at a binary, or set SWITCHYARD_SKIP_BROWSER=1 to skip these tests',
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...args,
    ],
  });
}
