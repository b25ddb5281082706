import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { BACKEND_STATUSES } from '../../plugin-sdk/index.js';

/** The page's files, as served. */
export interface Assets {
  html: string;
  css: string;
  js: string;
  /** uPlot (the chart library), served from its npm package: no CDN, works offline. */
  uplotJs: string;
  uplotCss: string;
}

/** uPlot's browser build and style sheet, as the npm package `uplot` ships them. */
export const UPLOT_FILES = { js: 'uplot/dist/uPlot.iife.min.js', css: 'uplot/dist/uPlot.min.css' } as const;

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
  const require = createRequire(import.meta.url);
  const vendor = (file: string) => {
    let path: string;
    try {
      path = require.resolve(file);
    } catch (err) {
      throw new Error(
        `dashboard: ${file} not found (is the npm package "uplot" installed?): ${(err as Error).message}`,
      );
    }
    return readFileSync(path, 'utf8');
  };
  return {
    html: read(ASSET_FILES.html),
    css: read(ASSET_FILES.css),
    js: withStatusEffects(read(ASSET_FILES.js)),
    uplotJs: vendor(UPLOT_FILES.js),
    uplotCss: vendor(UPLOT_FILES.css),
  };
}

/** The page's script with the status catalogue written over its `STATUS_EFFECTS` placeholder. */
export function withStatusEffects(js: string): string {
  const effects = Object.fromEntries(Object.entries(BACKEND_STATUSES).map(([k, v]) => [k, v.effect]));
  return js.replace('/*STATUS_EFFECTS*/ {}', () => JSON.stringify(effects));
}
