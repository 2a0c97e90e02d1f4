/**
 * The CloudFormation templates `fleetward onboard` prints pass cfn-lint (nothing ignored):
 * the member-account reader role, the EKS access entry, and every evidence bucket of the
 * example fleet.yaml. Skips visibly where cfn-lint is not installed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const cfnLintMissing = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' }).error;

function onboard(target: string, out: string): void {
  const run = spawnSync(
    process.execPath,
    [
      'bin/fleetward.ts',
      'onboard',
      target,
      '--config',
      'fleet.example.yaml',
      '--stage',
      'prod',
      '--out',
      out,
    ],
    { encoding: 'utf8', env: { ...process.env, FLEETWARD_CONFIG: '' }, timeout: 60_000 },
  );
  expect(run.status, run.stderr).toBe(0);
}

describe('fleetward onboard: CloudFormation templates', () => {
  it.for(['aws', 'kubernetes', 'evidence'])('%s templates pass cfn-lint', (target, ctx) => {
    if (cfnLintMissing)
      ctx.skip(`needs cfn-lint (python3 -m pip install cfn-lint): ${cfnLintMissing.message}`);
    // Prepare
    const out = mkdtempSync(join(tmpdir(), `fleetward-onboard-${target}-`));
    onboard(target, out);
    const templates = readdirSync(out).filter((f) => f.endsWith('.cfn.json'));

    // Act
    const lint = spawnSync('cfn-lint', ['--', ...templates.map((t) => join(out, t))], { encoding: 'utf8' });

    // Assess
    expect(templates.length).toBeGreaterThan(0);
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
  });
});
