/**
 * The drill's verdict on a restore and its RTO evidence, from objects as Velero and Kubernetes
 * report them (samples and sources in test/fixtures/velero/README.md).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { judgeRestore, readySince } from '../../shared/jobs/drill.ts';
import type { KubeObject } from '../../shared/ports.ts';
import type { VeleroBackup, VeleroRestore } from '../../shared/velero/resources.ts';

const sample = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../fixtures/velero/${name}.json`, import.meta.url), 'utf8')) as T;

describe('drill verdict', () => {
  it('passes a Completed restore that restored all of its own items, fewer than the backup held', () => {
    const backup = sample<VeleroBackup>('issue-5596-backup-completed');
    const restore = sample<VeleroRestore>('issue-5596-restore-completed');

    expect(judgeRestore(restore, backup.status?.progress?.itemsBackedUp ?? null)).toEqual([]);
  });

  it.each([
    [
      'PartiallyFailed with errors',
      { phase: 'PartiallyFailed', errors: 2, progress: { totalItems: 646, itemsRestored: 644 } },
      /ended PartiallyFailed.*2 error/,
    ],
    [
      'Failed with a reason',
      { phase: 'Failed', failureReason: 'error downloading backup' },
      /ended Failed: error downloading backup/,
    ],
    [
      'Completed short of its own total',
      { phase: 'Completed', progress: { totalItems: 646, itemsRestored: 600 } },
      /restored 600 of 646 items/,
    ],
    [
      'Completed with errors',
      { phase: 'Completed', errors: 1, progress: { totalItems: 646, itemsRestored: 646 } },
      /1 error/,
    ],
  ])('fails a restore %s', (_case, status, reason) => {
    const restore = { ...sample<VeleroRestore>('issue-5596-restore-completed'), status };

    expect(judgeRestore(restore, 702).join('; ')).toMatch(reason);
  });

  it('does not fail a Completed restore for warnings', () => {
    const restore = {
      ...sample<VeleroRestore>('issue-5596-restore-completed'),
      status: { phase: 'Completed', warnings: 3, progress: { totalItems: 646, itemsRestored: 646 } },
    };

    expect(judgeRestore(restore, 702)).toEqual([]);
  });
});

describe('workload readiness evidence', () => {
  it('takes a Deployment ready at its Available condition, or when its rollout completed if later', () => {
    const deployment = sample<KubeObject>('k8s-deployment-available');

    expect(readySince(deployment)).toEqual({ ready: true, at: '2024-05-13T09:31:47Z' });
  });

  it('takes a ready StatefulSet (no conditions) at the last status write of its controller', () => {
    const statefulSet = sample<KubeObject>('k8s-statefulset-ready');

    expect(readySince(statefulSet)).toEqual({ ready: true, at: '2024-05-13T09:32:05Z' });
  });

  it('has no time for a ready StatefulSet without managedFields, and none for a workload not ready', () => {
    const { managedFields: _m, ...metadata } = sample<KubeObject>('k8s-statefulset-ready').metadata;
    const bare = { ...sample<KubeObject>('k8s-statefulset-ready'), metadata };
    const starting = {
      ...sample<KubeObject>('k8s-statefulset-ready'),
      spec: { replicas: 3 },
      status: { replicas: 3, readyReplicas: 1 },
    };

    expect(readySince(bare)).toEqual({ ready: true, at: null });
    expect(readySince(starting)).toEqual({ ready: false, at: null });
  });
});
