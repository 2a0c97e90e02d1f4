import { describe, expect, it } from 'vitest';
import {
  assertScratchOnly,
  backupName,
  buildRestore,
  dnsLabel,
  rateMs,
  ttl,
  UnsafeRestoreError,
  type VeleroRestore,
  windowStart,
} from '../../shared/velero/resources.ts';

const restore = (spec: Partial<VeleroRestore['spec']>): VeleroRestore => ({
  apiVersion: 'velero.io/v1',
  kind: 'Restore',
  metadata: { name: 'r' },
  spec: {
    backupName: 'b',
    includedNamespaces: ['shop'],
    namespaceMapping: { shop: 'fw-drill-x-shop' },
    includeClusterResources: false,
    ...spec,
  },
});

describe('velero resources', () => {
  it.each([
    ['rate(1 day)', 86_400_000],
    ['rate(6 hours)', 21_600_000],
    ['rate(30 minutes)', 1_800_000],
  ])('reads %s', (expression, ms) => {
    expect(rateMs(expression)).toBe(ms);
  });

  it('refuses schedules it cannot turn into windows', () => {
    expect(() => rateMs('cron(0 2 * * ? *)')).toThrow(/unsupported schedule/);
  });

  it('names a Backup after its window, the same for every instant in the window', () => {
    const day = rateMs('rate(1 day)');
    const a = windowStart(new Date('2026-11-21T00:00:00Z'), day);
    const b = windowStart(new Date('2026-11-21T23:59:59Z'), day);

    expect(backupName(a)).toBe('fleetward-202611210000');
    expect(backupName(b)).toBe(backupName(a));
    expect(backupName(windowStart(new Date('2026-11-22T00:00:00Z'), day))).toBe('fleetward-202611220000');
  });

  it('writes TTLs as Go durations', () => {
    expect(ttl(30)).toBe('720h0m0s');
  });

  it('keeps DNS labels within 63 characters and distinct', () => {
    const a = dnsLabel(`fw-drill-${'x'.repeat(80)}-a`);
    const b = dnsLabel(`fw-drill-${'x'.repeat(80)}-b`);

    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it('builds drill restores that map every namespace into scratch space', () => {
    const r = buildRestore({
      name: 'fleetward-drill-202611210000',
      namespace: 'velero',
      backupName: 'b',
      namespaces: ['shop', 'payments'],
      scratchPrefix: 'fw-drill-',
      runId: 'run',
    });

    expect(() => assertScratchOnly(r, 'fw-drill-')).not.toThrow();
    expect(Object.values(r.spec.namespaceMapping ?? {}).every((ns) => ns.startsWith('fw-drill-'))).toBe(true);
    expect(r.spec.includeClusterResources).toBe(false);
  });

  it.each([
    ['no namespace list', { includedNamespaces: [] }],
    ['a wildcard', { includedNamespaces: ['*'] }],
    ['cluster-scoped resources', { includeClusterResources: true }],
    ['an unmapped namespace', { includedNamespaces: ['shop', 'payments'] }],
    ['a mapping into a live namespace', { namespaceMapping: { shop: 'shop-restored' } }],
    [
      'an extra mapping outside scratch space',
      { namespaceMapping: { shop: 'fw-drill-x-shop', other: 'prod' } },
    ],
  ])('refuses a restore with %s', (_case, spec) => {
    expect(() => assertScratchOnly(restore(spec), 'fw-drill-')).toThrow(UnsafeRestoreError);
  });
});
