import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // What `switchyard/plugin-sdk` resolves to for third-party plugins run from source in tests.
    alias: { 'switchyard/plugin-sdk': fileURLToPath(new URL('./plugin-sdk/index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts', 'plugins/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Sockets and child processes: keep files in separate forks so a leak cannot cross files.
    pool: 'forks',
  },
});
