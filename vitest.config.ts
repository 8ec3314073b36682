import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // one test file per core: vitest's default (cores - 1) runs the files one at a time on a 2-core machine,
    // and most of them compute on one thread (wasm has no threads in Node), leaving the other core idle
    maxWorkers: '100%',
  },
});
