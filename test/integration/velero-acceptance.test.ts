/**
 * Acceptance of backups and drills: the CLI, as a user runs it, against the whole sandbox
 * (discover, backup run, backup status, drill run, drill status).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summaryLine } from '../../bin/output.ts';
import type { ClusterBackupView, ClusterDrillView } from '../../shared/jobs/velero-report.ts';
import { CONDITION } from '../../shared/velero/preflight.ts';
import { createBucketWriter } from '../sandbox/bucket-writers.ts';
import { runFleetward, runFleetwardJson } from '../sandbox/cli.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

/** The CLI in its own process, quiet logs. */
const fleetward = (args: string[]) => runFleetward([...args, '--log-level', 'error']);

async function json<T>(args: string[]): Promise<T> {
  return (await runFleetwardJson<T>([...args, '--log-level', 'error'])).json;
}

describe('backups and drills against the sandbox', () => {
  let sandbox: Sandbox;
  let config: string[];

  beforeAll(async () => {
    sandbox = await startSandbox({ clusters: 24, dir: mkdtempSync(join(tmpdir(), 'fleetward-velero-')) });
    config = ['--config', sandbox.configPath];
  });
  afterAll(async () => {
    await sandbox?.stop();
  });

  it('backs up every cluster with Velero inside its jurisdiction and reports an RPO, with findings for the rest', async () => {
    // No `discover` before: on an empty inventory the CLI discovers first.
    const run = await fleetward(['backup', 'run', ...config]);
    expect(run.stderr).toMatch(/inventory is empty: discovering/);
    expect(run.code).toBe(1); // some clusters have findings
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines.filter((l) => l.length > 120)).toEqual([]);
    const created = lines.filter((l) => l.startsWith('created ')).length;
    const skipped = lines.filter((l) => l.startsWith('skipped ')).length;
    expect(created).toBeGreaterThan(10);
    expect(lines.at(-1)).toBe(
      `Summary: ${created} created, ${skipped} skipped (exit 1: completed with failures)`,
    );
    await new Promise((r) => setTimeout(r, 600)); // the simulator completes Backups after 200 ms

    const { clusters } = await json<{ clusters: ClusterBackupView[] }>(['backup', 'status', ...config]);

    const withVelero = clusters.filter(
      (c) => sandbox.veleroBuckets.has(c.clusterId) && c.jurisdiction !== 'unassigned',
    );
    const backedUp = withVelero.filter((c) => !c.findings.some((f) => f.kind === 'bsl-outside-jurisdiction'));
    expect(backedUp.length).toBeGreaterThan(10);
    for (const c of backedUp) {
      expect(c.lastBackup?.phase, c.clusterId).toBe('Completed');
      expect(c.rpoSeconds).toBeGreaterThanOrEqual(0);
      expect(c.rpoOk).toBe(true);
      expect(c.findings).toEqual([]);
    }
    const without = clusters.filter(
      (c) => !sandbox.veleroBuckets.has(c.clusterId) && c.jurisdiction !== 'unassigned',
    );
    expect(without.length).toBeGreaterThan(0);
    for (const c of without) expect(c.findings.map((f) => f.kind)).toEqual(['velero-missing']);
    for (const c of clusters.filter((x) => x.jurisdiction === 'unassigned')) {
      expect(c.findings.map((f) => f.kind)).toEqual(['unassigned']);
      expect(c.lastBackup).toBeNull();
    }
    const misplaced = clusters.filter((c) => c.findings.some((f) => f.kind === 'bsl-outside-jurisdiction'));
    expect(misplaced).toHaveLength(1);
    expect(misplaced[0]?.lastBackup).toBeNull();
  });

  it('shows backup status within 120 columns, each cluster by its id, ending with the summary line', async () => {
    const { clusters } = await json<{ clusters: ClusterBackupView[] }>(['backup', 'status', ...config]);
    const run = await fleetward(['backup', 'status', ...config]);
    const lines = run.stdout.trimEnd().split('\n');
    const ok = clusters.filter((c) => c.rpoOk === true && c.findings.length === 0).length;
    const withFindings = clusters.filter((c) => c.findings.length > 0).length;

    expect(run.code).toBe(1);
    expect(lines.filter((l) => l.length > 120)).toEqual([]);
    for (const c of clusters) expect(lines.some((l) => l.trim().split(/\s+/)[0] === c.clusterId)).toBe(true);
    const pending = clusters.length - ok - withFindings;
    expect(lines.at(-1)).toBe(summaryLine({ ok, 'with findings': withFindings, pending }, 1));
  });

  it('wrote every backup into its in-jurisdiction bucket and nothing into the misplaced one', async () => {
    const writer = createBucketWriter({ s3Endpoint: sandbox.moto.url });
    try {
      const { clusters } = await json<{ clusters: ClusterBackupView[] }>(['backup', 'status', ...config]);
      for (const c of clusters.filter(
        (x) => x.clusterId.startsWith('aws/') && sandbox.veleroBuckets.has(x.clusterId),
      )) {
        const bucket = sandbox.veleroBuckets.get(c.clusterId)!;
        const files = c.lastBackup ? await writer.readBackupObjects(bucket, c.lastBackup.name) : [];
        if (c.findings.some((f) => f.kind === 'bsl-outside-jurisdiction')) {
          const window = clusters.find((x) => x.lastBackup)!.lastBackup!.name;
          expect(await writer.readBackupObjects(bucket, window)).toEqual([]);
        } else if (c.jurisdiction !== 'unassigned') {
          expect(files.map((f) => f.key)).toContain('velero-backup.json');
        }
      }
    } finally {
      writer.close();
    }
  });

  it('creates no second Backup when run twice in one window', async () => {
    const again = await fleetward(['backup', 'run', ...config, '--json']);
    const result = JSON.parse(again.stdout) as { outcomes: { status: string }[] };

    expect(result.outcomes.filter((o) => o.status === 'created')).toEqual([]);
    expect(result.outcomes.filter((o) => o.status === 'exists').length).toBeGreaterThan(10);
    for (const cluster of sandbox.kube!.clusters()) {
      expect(cluster.objects('velero.io/v1', 'Backup', 'velero').length).toBeLessThanOrEqual(1);
    }
  });

  it('runs restore drills with a measured RTO and leaves no scratch namespace behind', async () => {
    const run = await fleetward(['drill', 'run', ...config]);
    expect(run.stderr).toMatch(/Started \d+ drill/);
    expect(run.stderr).not.toMatch(/in progress\.\.\./);

    const { clusters } = await json<{ clusters: ClusterDrillView[] }>(['drill', 'status', ...config]);
    const lines = run.stdout.trimEnd().split('\n');
    const passed = clusters.filter((c) => c.drill?.result === 'pass' && c.findings.length === 0).length;
    const couldNot = clusters.filter((c) => c.findings.length > 0).length;
    expect(lines.filter((l) => l.length > 120)).toEqual([]);
    expect(lines.at(-1)).toBe(
      `Summary: ${passed} pass, ${couldNot} could not run (exit 1: completed with failures)`,
    );

    const drilled = clusters.filter((c) => c.drill);
    expect(drilled.length).toBeGreaterThan(10);
    for (const c of drilled) {
      expect(c.drill?.phase, c.clusterId).toBe('done');
      expect(c.drill?.result).toBe('pass');
      // Measured from the cluster's own (whole-second) timestamps: a fast sandbox restore may take 0 s.
      expect(c.drill?.rtoSeconds).toBeGreaterThanOrEqual(0);
      expect(c.drill?.withinRto).toBe(true);
      expect(c.drill?.itemsRestored).toBe(c.drill?.backupItems);
      expect(c.drill?.scratchNamespacesLeft).toBe(0);
    }
    for (const cluster of sandbox.kube!.clusters()) {
      const scratch = cluster
        .objects('v1', 'Namespace')
        .filter((ns) => ns.metadata.name?.startsWith('fw-drill-'));
      expect(scratch, cluster.key).toEqual([]);
    }
  });

  it('says "Velero is not installed" for a cluster without Velero, in backups and drills alike', async () => {
    const backups = await json<{ clusters: ClusterBackupView[] }>(['backup', 'status', ...config]);
    const drills = await json<{ clusters: ClusterDrillView[] }>(['drill', 'status', ...config]);
    const text = await fleetward(['drill', 'status', ...config]);
    const without = backups.clusters.filter((c) => c.findings.some((f) => f.kind === 'velero-missing'));

    expect(without.length).toBeGreaterThan(0);
    for (const b of without) {
      const d = drills.clusters.find((c) => c.clusterId === b.clusterId);
      expect(b.findings.map((f) => f.message)).toEqual([CONDITION.veleroMissing]);
      expect(d?.findings.map((f) => f.message)).toEqual([`drill not started: ${CONDITION.veleroMissing}`]);
      expect(d?.findings.map((f) => f.kind)).toEqual(['drill-refused']);
    }
    expect(text.stdout).not.toMatch(/404|NotFound/);
    expect(text.stdout).toMatch(/could not run +- +- +Velero is not installed/);
  });

  it('takes a short cluster name for --cluster, and refuses an unknown one with exit 2 and near matches', async () => {
    const { clusters } = await json<{ clusters: ClusterBackupView[] }>(['backup', 'status', ...config]);
    const ids = clusters.map((c) => c.clusterId);
    const names = ids.map((id) => id.split('/').at(-1) as string);
    const unique = names.find((n) => names.indexOf(n) === names.lastIndexOf(n)) as string;
    const id = ids[names.indexOf(unique)] as string;

    const short = await json<{ clusters: ClusterBackupView[] }>([
      'backup',
      'status',
      '--cluster',
      unique,
      ...config,
    ]);
    const typo = await fleetward(['backup', 'status', '--cluster', `${unique.slice(0, -1)}x`, ...config]);
    const unknown = await fleetward(['backup', 'status', '--cluster', 'no-such-cluster-anywhere', ...config]);

    expect(short.clusters.map((c) => c.clusterId)).toEqual([id]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain(`did you mean: ${id}`);
    expect(typo.stderr).not.toMatch(/UnknownClusterError/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no cluster "no-such-cluster-anywhere" in the inventory/);
  });
});
