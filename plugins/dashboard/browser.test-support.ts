import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/**
 * Headless Chromium for the page's tests: the Debian package `chromium` (or a binary named by
 * SWITCHYARD_CHROMIUM), driven by playwright-core. SWITCHYARD_SKIP_BROWSER=1 skips them.
 */
export const CHROMIUM = process.env.SWITCHYARD_CHROMIUM ?? '/usr/bin/chromium';
export const SKIP_BROWSER = process.env.SWITCHYARD_SKIP_BROWSER === '1';

export async function launchChromium(): Promise<Browser> {
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
    ],
  });
}
