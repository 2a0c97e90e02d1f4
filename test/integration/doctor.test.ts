/**
 * `fleetward doctor` against the sandbox, as a user runs it: every access holds (exit 0,
 * posture listed as findings); with one permission denied in the fakes it exits 1 and names
 * that permission as the grants table spells it (the fakes' refusals only name the call).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../shared/jobs/doctor.ts';
import { runFleetward, runFleetwardJson } from '../sandbox/cli.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

describe('fleetward doctor against the sandbox', () => {
  let sandbox: Sandbox;
  let config: string[];

  /** Runs `doctor --json` with `call` denied by every fake. */
  async function deniedRun(call: string) {
    const allow = sandbox.faults.deny(call);
    try {
      return await runFleetwardJson<DoctorReport>(['doctor', ...config]);
    } finally {
      allow();
    }
  }

  beforeAll(async () => {
    sandbox = await startSandbox({ clusters: 12, dir: mkdtempSync(join(tmpdir(), 'fleetward-doctor-')) });
    config = ['--config', sandbox.configPath, '--log-level', 'error'];
  }, 120_000);
  afterAll(async () => {
    await sandbox?.stop();
    if (sandbox) rmSync(sandbox.dir, { recursive: true, force: true });
  });

  it('exits 0 when every scope has the access a run needs, and lists posture as findings', async () => {
    const run = await runFleetward(['doctor', ...config]);

    expect(run.code, run.stdout + run.stderr).toBe(0);
    // DETAIL is a column when the targets leave it room, else each detail has lines of its own.
    expect(run.stdout).toMatch(/^STATUS\s+CHECK\s+TARGET(\s+DETAIL)?$/m);
    expect(run.stdout.split('\n').filter((l) => l.length > 120)).toEqual([]);
    expect(run.stdout).not.toMatch(/^FAIL/m);
    for (const check of [
      'credentials',
      'clusters listable',
      'audit logs readable',
      'evidence write-once and in jurisdiction',
      'velero reachable',
    ])
      expect(run.stdout).toMatch(new RegExp(`^OK\\s+${check}`, 'm'));
    // The sandbox's seeded gaps are findings, not failures.
    expect(run.stdout).toMatch(/Findings \(posture, not failing\):/);
    expect(run.stdout).toMatch(/velero-missing: Velero is not installed/);
    expect(run.stdout).toMatch(/audit logging is off/);
  });

  it('with GKE cluster listing denied, exits 1 and names container.clusters.list for every project', async () => {
    const { code, json } = await deniedRun('container:ListClusters');

    expect(code).toBe(1);
    expect(json.ok).toBe(false);
    const failed = json.checks.filter((c) => c.status === 'fail');
    expect(failed.length).toBeGreaterThan(0);
    for (const c of failed) {
      expect(c).toMatchObject({ check: 'clusters listable' });
      expect(c.target).toMatch(/^gcp /);
      expect(c.fix).toEqual([
        expect.stringMatching(/^grant container\.clusters\.list \(the Fleetward role in the project\): /),
      ]);
    }
  });

  it('with logs:FilterLogEvents denied, exits 1 and prints the grant under each audited AWS scope', async () => {
    const allow = sandbox.faults.deny('logs:FilterLogEvents');
    let run: Awaited<ReturnType<typeof runFleetward>>;
    try {
      run = await runFleetward(['doctor', ...config]);
    } finally {
      allow();
    }

    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /^FAIL\s+audit logs readable\s+aws \d{12}\/[a-z0-9-]+\s+.*AccessDeniedException/m,
    );
    expect(run.stdout).toContain('fix: grant logs:FilterLogEvents (the member account reader role): ');
    expect(run.stdout).not.toMatch(/^FAIL\s+(clusters listable|velero reachable|evidence)/m);
  });

  it("with Velero's storage locations unreadable, names the Kubernetes RBAC rule", async () => {
    const { code, json } = await deniedRun('list velero.io/backupstoragelocations');

    expect(code).toBe(1);
    const failed = json.checks.filter((c) => c.status === 'fail');
    expect(failed.length).toBeGreaterThan(0);
    for (const c of failed) {
      expect(c.check).toBe('velero reachable');
      expect(c.detail).toMatch(/403/);
      expect(c.fix).toEqual([
        expect.stringMatching(
          /^grant velero\.io\/backupstoragelocations:list \(the cluster's Fleetward ClusterRole\): /,
        ),
      ]);
    }
  });

  it.each([
    ['logging:entries.list', 'audit logs readable', /^gcp /, 'logging.logEntries.list'],
    [
      'loganalytics:query',
      'audit logs readable',
      /^azure /,
      'Microsoft.OperationalInsights/workspaces/query/read',
    ],
    [
      'arm:blobContainers.get',
      'evidence write-once and in jurisdiction',
      /^evidence \w+ azure:/,
      'Microsoft.Storage/storageAccounts/blobServices/containers/read',
    ],
    // GCS backup buckets are located with the same call: those clusters' Velero rows fail too.
    [
      'storage:buckets.get',
      'evidence write-once and in jurisdiction|velero reachable',
      /^(evidence \w+ gcs:|cluster gcp\/)/,
      'storage.buckets.get',
    ],
  ])('with %s denied, the failing rows (%s) name the permission', async (call, check, target, permission) => {
    const { code, json } = await deniedRun(call);

    expect(code).toBe(1);
    const failed = json.checks.filter((c) => c.status === 'fail');
    expect(failed.filter((c) => c.check === check.split('|')[0]).length).toBeGreaterThan(0);
    for (const c of failed) {
      expect(c.check).toMatch(new RegExp(`^(${check})$`));
      expect(c.target).toMatch(target);
      expect(c.fix?.some((f) => f.startsWith(`grant ${permission} (`))).toBe(true);
    }
  });
});
