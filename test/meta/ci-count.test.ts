/**
 * `.ci/run` ends with one line counted from vitest's JSON report. These tests run the real
 * vitest on fixture files that fail in each way it reports differently, and check the count:
 * every test that did not pass and was not skipped on purpose is failed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script of the CI, without type declarations
import { count, summaryLine } from '../../.ci/count.mjs';
import { MOTO_INSTRUCTION } from '../sandbox/moto.ts';

const fixtures = resolve('test/fixtures/ci');

/** Runs vitest (the real one, as `npm test` does) with a JSON report; returns the report. */
function runVitest(args: string[], out: string, env: NodeJS.ProcessEnv = process.env) {
  const run = spawnSync(
    process.execPath,
    [
      resolve('node_modules/vitest/vitest.mjs'),
      'run',
      ...args,
      '--reporter=json',
      `--outputFile.json=${out}`,
    ],
    { encoding: 'utf8', timeout: 120_000, env },
  );
  return {
    status: run.status,
    output: `${run.stdout}${run.stderr}`,
    report: JSON.parse(readFileSync(out, 'utf8')),
  };
}

interface Counted {
  passed: number;
  failed: number;
  skipped: number;
  skippedTests: { file: string; name: string }[];
  fileErrors: { file: string; message: string }[];
}

describe('ci count', () => {
  let dir: string;
  let report: { testResults: { name: string }[] };
  let counted: Counted;

  beforeAll(() => {
    // Prepare / Act: the real vitest, the real JSON reporter
    dir = mkdtempSync(join(tmpdir(), 'fleetward-ci-count-'));
    const out = join(dir, 'report.json');
    const run = runVitest(['--root', fixtures, '--config', join(fixtures, 'vitest.config.ts')], out);
    expect(run.status).toBe(1);
    report = run.report;
    counted = count(report);
  }, 90_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('saw every fixture file', () => {
    expect(report.testResults.map((f) => f.name.split('/').at(-1)).sort()).toEqual([
      'describe-hook-throws.fixture.ts',
      'import-throws.fixture.ts',
      'mixed.fixture.ts',
      'setup-throws.fixture.ts',
      'skip.fixture.ts',
      'teardown-throws.fixture.ts',
    ]);
  });

  it('counts the tests of a file whose beforeAll throws as failed, not skipped', () => {
    const setup = count({
      testResults: report.testResults.filter((f) => f.name.endsWith('/setup-throws.fixture.ts')),
    });

    expect(setup).toMatchObject({ passed: 0, failed: 2, skipped: 0 });
  });

  it('counts the tests under a describe whose beforeAll throws as failed', () => {
    const hook = count({
      testResults: report.testResults.filter((f) => f.name.endsWith('/describe-hook-throws.fixture.ts')),
    });

    expect(hook).toMatchObject({ passed: 1, failed: 2, skipped: 0 });
  });

  it('counts a file that throws on import, or in afterAll, as one failure', () => {
    const files = report.testResults.filter((f) => /(import|teardown)-throws/.test(f.name));

    expect(count({ testResults: files })).toMatchObject({ passed: 1, failed: 2, skipped: 0 });
  });

  it('counts a skip for a missing tool as skipped and names it', () => {
    expect(counted.skippedTests.map((t) => t.name)).toEqual(['needs a tool']);
  });

  it('prints one plain line for the whole run', () => {
    expect(summaryLine(counted)).toBe('4 passed, 7 failed, 1 skipped');
    expect(counted.fileErrors.map((e) => e.message).sort()).toEqual([
      'import failed',
      'setup failed',
      'teardown failed',
    ]);
  });
});

describe('a machine without the Pub/Sub emulator', () => {
  it('skips the emulator tests visibly, with the reason, and runs the rest of their file', () => {
    // Prepare: the emulator directory is empty, as on a machine image without gcloud
    const dir = mkdtempSync(join(tmpdir(), 'fleetward-no-emulator-'));
    try {
      // Act
      const run = runVitest(['test/contract/pubsub-emulator.contract.test.ts'], join(dir, 'report.json'), {
        ...process.env,
        PUBSUB_EMULATOR_DIR: join(dir, 'none'),
      });
      const counted: Counted = count(run.report);

      // Assess
      expect(run.status).toBe(0);
      expect(counted.failed).toBe(0);
      expect(counted.skipped).toBeGreaterThan(10);
      expect(counted.passed).toBeGreaterThanOrEqual(3);
      expect(counted.skippedTests.map((t) => t.name)).toContain(
        'pubsub emulator lifecycle is gone, with its whole process group, after stop',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});

describe('a machine without moto', () => {
  it('fails the tests that need moto, each with the one-line install step, and says it once up front', () => {
    // Prepare: no Python on PATH (so no install either), and no configured one
    const dir = mkdtempSync(join(tmpdir(), 'fleetward-no-moto-'));
    try {
      // Act
      const run = runVitest(['test/contract/eks-describe.contract.test.ts'], join(dir, 'report.json'), {
        ...process.env,
        PATH: dirname(process.execPath),
        FLEETWARD_MOTO_PYTHON: join(dir, 'no-python'),
      });
      const counted: Counted = count(run.report);

      // Assess
      expect(run.status).toBe(1);
      expect(counted.passed + counted.skipped).toBe(0);
      expect(counted.failed).toBeGreaterThan(0);
      expect(run.output.split('\n').filter((l) => l === `missing tool: ${MOTO_INSTRUCTION}`)).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
