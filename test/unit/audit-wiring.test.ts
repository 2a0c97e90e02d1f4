/**
 * Which evidence store a run gets for a jurisdiction without an evidence bucket: none (a
 * refusal naming the config field) unless the run explicitly allows local evidence, as only
 * the CLI's --local-evidence does; what a deployed handler builds never allows it.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCAL_EVIDENCE_WARNING } from '../../bin/audit.ts';
import { createEvidenceStores, NoEvidenceStoreError } from '../../shared/audit/wiring.ts';
import { FleetConfig } from '../../shared/config/schema.ts';
import { collect } from '../../shared/jobs/audit.ts';
import { publish } from '../../shared/jobs/snapshot.ts';
import type { Finding } from '../../shared/model.ts';
import { auditJobDeps, snapshotDeps } from '../../shared/runtime/deps.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { runFleetward } from '../sandbox/cli.ts';
import { auditCluster } from './audit-builders.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function localConfig(): Promise<{ dir: string; config: FleetConfig }> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-wiring-'));
  dirs.push(dir);
  const config = FleetConfig.parse({
    version: 1,
    clouds: { kubeconfig: [] },
    jurisdictions: { eu: { preset: 'eu-gdpr' } },
    state: { type: 'sqlite', path: join(dir, 'state.db') },
  });
  return { dir, config };
}

const cluster = auditCluster;

describe('evidence stores', () => {
  it('refuses a jurisdiction without an evidence bucket unless local evidence is allowed', async () => {
    const { config, dir } = await localConfig();

    const refused = createEvidenceStores(config, { logger: silentLogger });
    const allowed = createEvidenceStores(config, {
      logger: silentLogger,
      localEvidence: true,
      localEvidenceDir: join(dir, 'evidence'),
    });

    const error = await refused.for('eu', 'aws').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoEvidenceStoreError);
    expect((error as Error).message).toContain('jurisdictions.eu.evidence');
    await expect(refused.all('eu')).rejects.toBeInstanceOf(NoEvidenceStoreError);
    const local = await allowed.for('eu', 'aws');
    expect(local).toMatchObject({ compliantStorage: false });
    expect(await local.location()).toBeNull();
  });

  it('a deployed run (the handlers\u2019 deps) never gets a local store: collect records a finding, writes nothing', async () => {
    const { config, dir } = await localConfig();
    const deps = await auditJobDeps(config, silentLogger, { localEvidence: false });
    const snapshot = await snapshotDeps(config, silentLogger, { localEvidence: false });
    try {
      await deps.store.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);
      const source = {
        enabled: async () => ({ enabled: true }),
        async *read() {},
      };

      const result = await collect({ ...deps, sources: { for: () => source } });

      expect(deps.allowLocalEvidence).toBe(false);
      expect(result.outcomes[0]).toMatchObject({ status: 'skipped' });
      const findings = await deps.store.get<Finding[]>('findings', `audit/${cluster.id}`);
      expect(findings?.map((f) => f.kind)).toEqual(['archive-unavailable']);
      expect(findings?.[0]?.message).toContain('jurisdictions.eu.evidence');
      await expect(snapshot.evidence?.all('eu')).rejects.toBeInstanceOf(NoEvidenceStoreError);
      expect(await readdir(dir)).not.toContain('.fleetward');
    } finally {
      await deps.store.close();
      await snapshot.store.close();
    }
  });

  it.each([
    [['--local-evidence'], true],
    [[], false],
  ])('the CLI with %j says local evidence is not compliant storage: %s', async (flag, warned) => {
    const { dir } = await localConfig();
    const file = join(dir, 'fleet.yaml');
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        clouds: { kubeconfig: [] },
        jurisdictions: { eu: { preset: 'eu-gdpr' } },
        state: { type: 'sqlite', path: join(dir, 'state.db') },
      }),
    );

    const run = await runFleetward(['audit', 'collect', ...flag, '--config', file, '--log-level', 'error']);

    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr.includes(LOCAL_EVIDENCE_WARNING)).toBe(warned);
    expect(LOCAL_EVIDENCE_WARNING).toMatch(/NOT compliant storage/);
  });
});

describe('snapshot publishing guard', () => {
  /** A store that cannot say where it is: a local directory, or one that claims nothing at all. */
  function unlocatedStore(declaredLocal: boolean) {
    const written: string[] = [];
    const store = {
      id: declaredLocal ? 'local:/evidence/eu' : 'mystery://evidence',
      ...(declaredLocal ? { compliantStorage: false } : {}),
      location: async () => null,
      assertImmutable: async () => {},
      create: async (key: string) => {
        written.push(key);
        return { key, version: '1' };
      },
      get: async () => null,
    };
    return { store, written };
  }

  it.each([
    ['a store that does not know its location', false, undefined],
    ['a local directory in a run that does not allow local evidence', true, undefined],
    ['a local directory in a run that does not allow local evidence (explicit)', true, false],
  ])('refuses to publish to %s and writes nothing', async (_what, declaredLocal, allow) => {
    // Prepare
    const { config } = await localConfig();
    const deps = await snapshotDeps(config, silentLogger, { localEvidence: true });
    const { store, written } = unlocatedStore(declaredLocal);
    try {
      await deps.store.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);

      // Act
      const result = await publish(
        {
          ...deps,
          allowLocalEvidence: allow,
          evidence: { all: async () => [store as never] },
        },
        { jurisdiction: 'eu' },
      );

      // Assess
      const eu = result.jurisdictions.find((o) => o.jurisdiction === 'eu');
      expect(written).toEqual([]);
      expect(eu?.published).toEqual([]);
      expect(eu?.publishError?.message).toMatch(/residency cannot be verified/);
    } finally {
      await deps.store.close();
    }
  });

  it('publishes to a local directory when the run allows local evidence, marked not compliant', async () => {
    const { config } = await localConfig();
    const deps = await snapshotDeps(config, silentLogger, { localEvidence: true });
    const { store, written } = unlocatedStore(true);
    try {
      await deps.store.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);

      const result = await publish(
        { ...deps, evidence: { all: async () => [store as never] } },
        { jurisdiction: 'eu' },
      );

      const eu = result.jurisdictions.find((o) => o.jurisdiction === 'eu');
      expect(eu?.publishError).toBeUndefined();
      expect(eu?.published).toMatchObject([{ compliantStorage: false }]);
      expect(written.length).toBeGreaterThan(1);
    } finally {
      await deps.store.close();
    }
  });
});
