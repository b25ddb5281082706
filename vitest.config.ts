import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'plugins/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Sockets and child processes: keep files in separate forks so a leak cannot cross files.
    pool: 'forks',
  },
});
