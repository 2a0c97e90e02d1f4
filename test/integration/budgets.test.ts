/**
 * Budgets as desired state against the sandbox (moto behind the AWS proxy, the Billing
 * Budgets gRPC fake with a EUR billing account, the ARM fake with EUR subscriptions), through
 * `fleetward budgets` in its own process as a user runs it. The tests run in order: each
 * starts from what the one before left.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { BudgetApplyResult } from '../../shared/jobs/budgets.ts';
import type { BudgetPlanResult } from '../../shared/state/records.ts';
import { runFleetward } from '../sandbox/cli.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

const WRITES: Record<string, string[]> = {
  aws: [
    'CreateBudget',
    'UpdateBudget',
    'DeleteBudget',
    'CreateNotification',
    'DeleteNotification',
    'CreateSubscriber',
    'DeleteSubscriber',
  ],
  gcp: ['CreateBudget', 'UpdateBudget', 'DeleteBudget'],
  azure: ['budgets.createOrUpdate', 'budgets.delete'],
};

interface Run<T> {
  code: number | null;
  json: T;
  stderr: string;
}

/** `node bin/budgets.ts <args> --json` in its own process. */
function budgets<T>(args: string[]): Promise<Run<T>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/budgets.ts', ...args, '--json'], {
      env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true', METADATA_SERVER_DETECTION: 'none' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code, json: JSON.parse(stdout) as T, stderr });
      } catch {
        reject(new Error(`budgets ${args.join(' ')} printed no JSON (exit ${code}): ${stderr}`));
      }
    });
  });
}

type Config = {
  budgets: {
    name: string;
    cloud: string;
    amount: number;
    currency: string;
    scope: Record<string, unknown>;
  }[];
  clouds: { azure: { endpoint: string; caFile: string; subscriptions: { id: string }[] } };
};

describe('fleetward budgets against the sandbox', () => {
  let sandbox: Sandbox;
  let base: Config;
  let variant = 0;

  /** Writes a changed copy of the sandbox config and returns its path. */
  function configWith(change: (c: Config) => void): string {
    const copy = structuredClone(base);
    change(copy);
    const path = join(sandbox.dir, `fleet-${++variant}.yaml`);
    writeFileSync(path, stringify(copy));
    return path;
  }

  const writes = (cloud?: string) =>
    sandbox.log.entries.filter(
      (e) => (!cloud || e.cloud === cloud) && (WRITES[e.cloud]?.includes(e.operation) ?? false),
    ).length;

  const plan = (config = sandbox.configPath) => budgets<BudgetPlanResult>(['plan', '--config', config]);
  const apply = (config = sandbox.configPath, extra: string[] = []) =>
    budgets<BudgetApplyResult>(['apply', '--config', config, ...extra]);

  beforeAll(async () => {
    sandbox = await startSandbox({
      clusters: 24,
      velero: false,
      dir: mkdtempSync(join(tmpdir(), 'fleetward-budgets-')),
    });
    base = parse(readFileSync(sandbox.configPath, 'utf8')) as Config;
  });
  afterAll(async () => {
    await sandbox?.stop();
  });

  it('plan, apply, plan again: 0 changes on all three clouds', async () => {
    const first = await plan();
    expect(first.json.failures).toEqual([]);
    expect(first.code).toBe(0);
    expect(first.json.changes.map((c) => c.action)).toEqual(base.budgets.map(() => 'create'));
    expect(new Set(first.json.changes.map((c) => c.cloud))).toEqual(new Set(['aws', 'gcp', 'azure']));
    // The last AWS account in use is left without a budget on purpose.
    const covered = new Set(base.budgets.filter((b) => b.cloud === 'aws').map((b) => b.scope.account));
    expect(first.json.findings.length).toBeGreaterThan(0);
    for (const f of first.json.findings) {
      expect(f).toMatchObject({ kind: 'budget-missing', severity: 'medium' });
      expect(f.clusterId).toMatch(/^aws\/\d{12}\//);
      expect(covered.has(f.clusterId.split('/')[1]!)).toBe(false);
    }
    expect(writes()).toBe(0);

    // As a person reads it: every line within 120 columns, then the summary line.
    const text = await runFleetward(['budgets', 'plan', '--config', sandbox.configPath]);
    const lines = text.stdout.trimEnd().split('\n');
    expect(text.code).toBe(0);
    expect(lines.filter((l) => l.length > 120)).toEqual([]);
    expect(lines.at(-1)).toBe(
      `Summary: ${base.budgets.length} to create, ${first.json.findings.length} clusters without a budget (exit 0: done)`,
    );
    expect(writes()).toBe(0);

    const applied = await apply();
    expect(applied.json.failures).toEqual([]);
    expect(applied.code).toBe(0);
    expect(applied.json.changes.every((c) => c.status === 'applied')).toBe(true);
    expect(applied.json.changes).toHaveLength(base.budgets.length);

    sandbox.log.clear();
    const again = await plan();
    expect(again.code).toBe(0);
    expect(again.json.changes).toEqual([]);
    expect(again.json.summary).toMatch(/^Plan: 0 to create, 0 to update, 0 to delete;/);
    // All three clouds were read.
    expect(sandbox.log.count('aws', 'DescribeBudgets')).toBeGreaterThan(0);
    expect(sandbox.log.count('gcp', 'ListBudgets')).toBeGreaterThan(0);
    expect(sandbox.log.count('azure', 'budgets.list')).toBeGreaterThan(0);
  });

  it('a second apply changes nothing: 0 calls that write', async () => {
    sandbox.log.clear();
    const second = await apply();
    expect(second.code).toBe(0);
    expect(second.json.changes).toEqual([]);
    expect(writes()).toBe(0);
  });

  it('drift: a changed amount is one update per cloud, then no change', async () => {
    const drifted = configWith((c) => {
      for (const cloud of ['aws', 'gcp', 'azure']) c.budgets.find((b) => b.cloud === cloud)!.amount += 500;
    });
    const planned = await plan(drifted);
    expect(planned.json.changes.map((c) => [c.cloud, c.action])).toEqual(
      expect.arrayContaining([
        ['aws', 'update'],
        ['gcp', 'update'],
        ['azure', 'update'],
      ]),
    );
    expect(planned.json.changes).toHaveLength(3);
    for (const c of planned.json.changes) expect(c.diffs?.map((d) => d.field)).toEqual(['amount']);

    const applied = await apply(drifted);
    expect(applied.json.failures).toEqual([]);
    expect(applied.json.changes.map((c) => c.status)).toEqual(['applied', 'applied', 'applied']);
    expect((await plan(drifted)).json.changes).toEqual([]);
    // And back to the sandbox config for the next tests.
    expect((await apply()).json.changes).toHaveLength(3);
  });

  it('a budget that left the config is deleted; an unmanaged budget survives', async () => {
    const azure = base.clouds.azure;
    const subscription = azure.subscriptions[0]!.id;
    const path = `/subscriptions/${subscription}/providers/Microsoft.Consumption/budgets/team-own?api-version=2021-10-01`;
    const arm = (method: string, body?: unknown) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          `${azure.endpoint}${path}`,
          {
            method,
            ca: readFileSync(azure.caFile, 'utf8'),
            headers: { authorization: 'Bearer sandbox-token', 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    expect(
      await arm('PUT', {
        properties: {
          category: 'Cost',
          amount: 10,
          timeGrain: 'Monthly',
          timePeriod: { startDate: '2025-01-01T00:00:00Z' },
        },
      }),
    ).toBe(201);
    const dropped = base.budgets.filter((b) => b.cloud === 'azure').at(-1)!;
    const without = configWith((c) => {
      c.budgets = c.budgets.filter((b) => b.name !== dropped.name);
    });
    const planned = await plan(without);
    expect(planned.json.changes.map((c) => [c.action, c.name])).toEqual([['delete', dropped.name]]);
    const applied = await apply(without);
    expect(applied.json.changes.map((c) => c.status)).toEqual(['applied']);
    expect((await plan(without)).json.changes).toEqual([]);
    expect(await arm('GET')).toBe(200);
    // Put it back.
    expect((await apply()).json.changes.map((c) => c.action)).toEqual(['create']);
  });

  it('partial failure: one cloud fails, the others are applied, the result names the failed cloud', async () => {
    const drifted = configWith((c) => {
      for (const cloud of ['aws', 'gcp', 'azure']) c.budgets.find((b) => b.cloud === cloud)!.amount += 100;
    });
    sandbox.faults.add({
      cloud: 'azure',
      operation: 'budgets.createOrUpdate',
      fault: { kind: 'error', status: 403 },
    });
    try {
      const applied = await apply(drifted);
      expect(applied.code).toBe(1);
      expect(applied.json.failedClouds).toEqual(['azure']);
      expect(applied.json.failures).toHaveLength(1);
      expect(applied.json.failures[0]).toMatchObject({
        cloud: 'azure',
        address: expect.stringMatching(/^azure\//),
      });
      const status = Object.fromEntries(applied.json.changes.map((c) => [c.cloud, c.status]));
      expect(status).toEqual({ aws: 'applied', gcp: 'applied', azure: 'failed' });
    } finally {
      sandbox.faults.clear();
    }
    const left = await plan(drifted);
    expect(left.json.changes.map((c) => c.cloud)).toEqual(['azure']);
    expect((await apply()).json.failures).toEqual([]);
  });

  it('more changes than --max-changes refuses the apply and writes nothing', async () => {
    const drifted = configWith((c) => {
      for (const b of c.budgets) b.amount += 1;
    });
    sandbox.log.clear();
    const refused = await apply(drifted, ['--max-changes', '2']);
    expect(refused.code).toBe(1);
    expect(refused.json.refused).toEqual({ changes: base.budgets.length, maxChanges: 2 });
    expect(refused.json.changes.every((c) => c.status === 'refused')).toBe(true);
    expect(writes()).toBe(0);
  });

  it('a budget in another currency than the billing account is a clear error and is not created', async () => {
    const gcp = base.budgets.find((b) => b.cloud === 'gcp')!;
    const azure = base.budgets.find((b) => b.cloud === 'azure')!;
    const mismatched = configWith((c) => {
      c.budgets.push(
        { ...structuredClone(gcp), name: 'gcp-in-dollars', currency: 'USD' },
        { ...structuredClone(azure), name: 'azure-in-dollars', currency: 'USD' },
      );
    });
    sandbox.log.clear();
    const applied = await apply(mismatched);
    expect(applied.code).toBe(1);
    expect(applied.json.failedClouds).toEqual(['azure', 'gcp']);
    for (const f of applied.json.failures) {
      expect(f.error.name).toBe('BudgetCurrencyError');
      expect(f.error.message).toMatch(/-in-dollars" is in USD but .* bills in EUR/);
    }
    expect(applied.json.changes.map((c) => [c.action, c.name, c.status]).sort()).toEqual([
      ['create', 'azure-in-dollars', 'failed'],
      ['create', 'gcp-in-dollars', 'failed'],
    ]);
    expect(writes()).toBe(0);
  });
});
