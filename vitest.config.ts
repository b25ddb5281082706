import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // What `switchyard/plugin-sdk` and `switchyard/testing` resolve to for third-party plugins
    // and their tests run from source (tsconfig.json "paths" says the same to the compiler).
    alias: {
      'switchyard/plugin-sdk': fileURLToPath(new URL('./plugin-sdk/index.ts', import.meta.url)),
      'switchyard/testing': fileURLToPath(new URL('./testing/index.ts', import.meta.url)),
    },
  },
  test: {
    include: [
      'test/**/*.test.ts',
      'plugins/**/*.test.ts',
      'testing/**/*.test.ts',
      'examples/**/*.test.{ts,js}',
    ],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Sockets and child processes: keep files in separate forks so a leak cannot cross files.
    pool: 'forks',
  },
});
