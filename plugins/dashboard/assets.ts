import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BACKEND_STATUSES } from '../../plugin-sdk/index.js';

/** The page's files, as served. */
export interface Assets {
  html: string;
  css: string;
  js: string;
}

export const ASSET_FILES = { html: 'dashboard.html', css: 'dashboard.css', js: 'dashboard.js' } as const;

/**
 * Where the static files are: `public/` next to this module when run from source; when run
 * from the compiled `dist/plugins/dashboard/`, tsc has not copied them, so the source folder
 * of the package (`plugins/dashboard/public/`) is used.
 */
export function assetDirs(moduleUrl: string | URL = import.meta.url): URL[] {
  return [new URL('./public/', moduleUrl), new URL('../../../plugins/dashboard/public/', moduleUrl)];
}

/** Reads the page's files once; throws naming every folder tried when they are missing. */
export function loadAssets(): Assets {
  const dirs = assetDirs();
  const dir = dirs.find((d) => existsSync(new URL(ASSET_FILES.html, d)));
  if (dir === undefined)
    throw new Error(
      `dashboard files not found; looked for ${ASSET_FILES.html} in ${dirs.map((d) => fileURLToPath(d)).join(', ')}`,
    );
  const read = (name: string) => readFileSync(new URL(name, dir), 'utf8');
  return {
    html: read(ASSET_FILES.html),
    css: read(ASSET_FILES.css),
    js: withStatusEffects(read(ASSET_FILES.js)),
  };
}

/** The page's script with the status catalogue written over its `STATUS_EFFECTS` placeholder. */
export function withStatusEffects(js: string): string {
  const effects = Object.fromEntries(Object.entries(BACKEND_STATUSES).map(([k, v]) => [k, v.effect]));
  return js.replace('/*STATUS_EFFECTS*/ {}', () => JSON.stringify(effects));
}
