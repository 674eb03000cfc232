import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    clearMocks: true,
    restoreMocks: true,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration and e2e suites start real servers and daemons; two cores, so keep files moderately parallel.
    maxWorkers: 2,
    reporters: ['default'],
  },
})
