import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // vitest's default is one worker fewer than the cores: 1 on a 2-core CI machine. Most of a
    // sandbox test's time is spent waiting for emulators in other processes, so two workers
    // finish the suite in about two thirds of the time (measured: 1030 s -> 812 s).
    maxWorkers: 2,
    // Finds moto and the Pub/Sub emulator once per run and names what is missing in one line.
    globalSetup: ['test/sandbox/global-setup.ts'],
    env: {
      // Nothing in a test may reach a real cloud: no metadata servers, no telemetry.
      METADATA_SERVER_DETECTION: 'none',
      AWS_EC2_METADATA_DISABLED: 'true',
      SLS_TELEMETRY_DISABLED: '1',
      // Handlers' Powertools logs would drown the test report; tests assert on results.
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      // Metrics lines (EMF) on stdout would drown it too; tests that check metrics enable them.
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      GOOGLE_CLOUD_PROJECT: 'fleetward-test',
    },
  },
});
