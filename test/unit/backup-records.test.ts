/**
 * Backup records and the per-cluster backup summary (`backup status`), built from Backups as
 * Velero reports them in user issues (see test/fixtures/velero/README.md).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mergeBackup, summarizeBackups } from '../../shared/jobs/reconcile-backups.ts';
import { renderBackupView } from '../../shared/jobs/velero-report.ts';
import type { BackupRecord } from '../../shared/state/records.ts';
import type { VeleroBackup } from '../../shared/velero/resources.ts';

const sample = (name: string): VeleroBackup =>
  JSON.parse(
    readFileSync(new URL(`../fixtures/velero/${name}.json`, import.meta.url), 'utf8'),
  ) as VeleroBackup;
const cluster = { id: 'aws:111122223333:eu-west-1:shop', jurisdiction: 'eu' };

/** A record as the backup job writes it when it creates the Backup (before any status). */
function created(name: string, createdAt: string): BackupRecord {
  return {
    clusterId: cluster.id,
    jurisdiction: cluster.jurisdiction,
    name,
    window: createdAt,
    runId: 'run-1',
    storageLocation: 'default',
    bucket: null,
    namespaces: ['shop'],
    createdAt,
    phase: 'New',
  };
}

describe('backup records', () => {
  it.each([
    ['absent', undefined],
    ['empty', ''],
  ])('reads an %s phase as New', (_case, phase) => {
    const live: VeleroBackup = {
      ...sample('issue-5596-backup-completed'),
      status: phase === undefined ? {} : { phase },
    };

    expect(mergeBackup(undefined, live, cluster).phase).toBe('New');
    expect(mergeBackup(created('firstbackup', '2022-11-16T10:21:12Z'), live, cluster).phase).toBe('New');
  });

  it('records the failureReason of a Failed backup and shows it in backup status', () => {
    const record = mergeBackup(
      created('nl-test', '2024-03-26T10:00:00Z'),
      sample('issue-7568-backup-failed'),
      cluster,
    );

    expect(record.phase).toBe('Failed');
    expect(record.failureReason).toBe(
      'found a backup with status "InProgress" during the server starting, mark it as "Failed"',
    );
    const summary = summarizeBackups([record], new Date('2024-03-26T11:00:00Z'), 86_400);
    expect(summary.lastBackup).toMatchObject({
      name: 'nl-test',
      phase: 'Failed',
      failureReason: record.failureReason,
    });
    const failed = summary.problems.find((p) => p.kind === 'backup-failed');
    expect(failed?.message).toContain('during the server starting');
    const table = renderBackupView([{ clusterId: cluster.id, jurisdiction: 'eu', ...summary, findings: [] }]);
    expect(table).toContain('during the server starting');
  });

  it('keeps failureReason off a record whose Backup has none', () => {
    const record = mergeBackup(undefined, sample('issue-5596-backup-completed'), cluster);

    expect(record).toMatchObject({
      phase: 'Completed',
      completedAt: '2022-11-16T10:21:24Z',
      itemsBackedUp: 702,
    });
    expect(record).not.toHaveProperty('failureReason');
  });

  it('says so when the newest Completed backup has no completionTimestamp, instead of "no Completed backup yet"', () => {
    const { status: _s, ...withoutStatus } = sample('issue-5596-backup-completed');
    const live: VeleroBackup = {
      ...withoutStatus,
      status: { phase: 'Completed', progress: { totalItems: 702, itemsBackedUp: 702 } },
    };
    const record = mergeBackup(created('firstbackup', '2022-11-16T10:21:12Z'), live, cluster);

    const summary = summarizeBackups([record], new Date('2022-11-16T12:00:00Z'), 86_400);

    expect(summary.problems.map((p) => p.kind)).toEqual(['backup-untimed']);
    expect(summary.problems[0]?.message).toMatch(/firstbackup is Completed without a completionTimestamp/);
    expect(summary.lastBackup).toMatchObject({ name: 'firstbackup', phase: 'Completed', completedAt: null });
    expect(summary.lastCompleted).toBeNull();
    expect(summary.rpoSeconds).toBeNull();
  });

  it('measures RPO from an older timed backup and still names the untimed newer one', () => {
    const timed = mergeBackup(
      created('firstbackup', '2022-11-16T10:21:12Z'),
      sample('issue-5596-backup-completed'),
      cluster,
    );
    const untimed: BackupRecord = { ...created('secondbackup', '2022-11-17T10:21:12Z'), phase: 'Completed' };

    const summary = summarizeBackups([timed, untimed], new Date('2022-11-17T11:21:24Z'), 86_400);

    expect(summary.lastCompleted?.name).toBe('firstbackup');
    expect(summary.rpoSeconds).toBe(25 * 3600);
    expect(summary.problems.map((p) => p.kind).sort()).toEqual(['backup-untimed', 'rpo-exceeded']);
  });
});
