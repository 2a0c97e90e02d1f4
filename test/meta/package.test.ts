/**
 * `npx serverless package` (osls) builds offline, one bundle per function, and the
 * generated CloudFormation template passes cfn-lint.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

describe('serverless package', () => {
  const out = mkdtempSync(join(tmpdir(), 'fleetward-package-'));
  let packaged: ReturnType<typeof spawnSync>;

  beforeAll(() => {
    packaged = spawnSync(join('node_modules', '.bin', 'serverless'), ['package', '--package', out], {
      encoding: 'utf8',
      timeout: 180_000,
      env: {
        ...process.env,
        SLS_TELEMETRY_DISABLED: '1',
        SLS_NOTIFICATIONS_MODE: 'off',
        AWS_EC2_METADATA_DISABLED: 'true',
        // No credentials and no endpoint: packaging must not need either.
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_PROFILE: '',
      },
    });
  });

  it('builds one bundle per function without credentials or network', () => {
    expect(packaged.status, String(packaged.stderr) + String(packaged.stdout)).toBe(0);
    const zips = readdirSync(out).filter((f) => f.endsWith('.zip'));
    const functions = readdirSync('functions', { withFileTypes: true }).filter((d) => d.isDirectory());
    expect(zips.sort()).toEqual(functions.map((d) => `${d.name}.zip`).sort());
  });

  it('declares the discovery schedule every 15 minutes', () => {
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'));
    const rules = Object.values(
      template.Resources as Record<string, { Type: string; Properties: { ScheduleExpression?: string } }>,
    )
      .filter((r) => r.Type === 'AWS::Events::Rule')
      .map((r) => r.Properties.ScheduleExpression);

    expect(rules).toContain('rate(15 minutes)');
  });

  it('passes cfn-lint', () => {
    const lint = spawnSync('cfn-lint', [join(out, 'cloudformation-template-update-stack.json')], {
      encoding: 'utf8',
    });

    expect(lint.error, 'cfn-lint must be installed (python3 -m pip install cfn-lint)').toBeUndefined();
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
  });
});
