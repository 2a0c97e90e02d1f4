/**
 * Tag plan/apply against the sandbox: the acceptance through the CLI (`tags plan --json`,
 * `tags apply`, the second plan, the change limit), then the reliability cases through the
 * job (partial failure, values a cloud refuses) and the GKE tagger against its own fake (a
 * concurrent label update between read and write). What landed is checked through the
 * discovery adapters, which read the fakes independently of the taggers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTagger as createAksTagger } from '../../shared/clouds/azure/tags.ts';
import { createTagger as createGkeTagger } from '../../shared/clouds/gcp/tags.ts';
import { createDiscoveries } from '../../shared/clouds/registry.ts';
import { loadConfig } from '../../shared/config/load.ts';
import { AzureConfig, GcpConfig } from '../../shared/config/schema.ts';
import { apply, type TagApplyResult } from '../../shared/jobs/tags.ts';
import type { Cluster } from '../../shared/model.ts';
import { systemClock } from '../../shared/ports.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { openStateStore } from '../../shared/state/index.ts';
import type { PlanJson } from '../../shared/tags/render.ts';
import { createTaggers } from '../../shared/tags/taggers.ts';
import { type ArmFake, aksCluster, startArmFake } from '../sandbox/arm-fake.ts';
import { runFleetward, runFleetwardJson } from '../sandbox/cli.ts';
import { RequestLog } from '../sandbox/faults.ts';
import { type GkeFake, gkeCluster, startGkeFake } from '../sandbox/gke-fake.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

/** `fleetward tags ...` through the CLI entry point, in its own Node process. */
const runTags = (args: string[]) => runFleetward(['tags', ...args]);
const runTagsJson = <T>(args: string[]) => runFleetwardJson<T>(['tags', ...args]);

const WRITES = [
  ['aws', 'TagResource'],
  ['gcp', 'SetLabels'],
  ['azure', 'managedClusters.updateTags'],
] as const;

describe('tags against the sandbox', () => {
  let sandbox: Sandbox;
  const writes = () => WRITES.reduce((n, [cloud, op]) => n + sandbox.log.count(cloud, op), 0);

  /** Every cloud cluster's tags as discovery reads them from the fakes. */
  async function cloudTags(): Promise<Map<string, Record<string, string>>> {
    const config = await loadConfig(sandbox.configPath);
    const discoveries = await createDiscoveries(config, { logger: silentLogger }, ['aws', 'gcp', 'azure']);
    const tags = new Map<string, Record<string, string>>();
    for (const d of discoveries) for (const c of (await d.discover()).clusters) tags.set(c.id, c.tags);
    return tags;
  }

  beforeAll(async () => {
    sandbox = await startSandbox({
      clusters: 24,
      velero: false,
      dir: mkdtempSync(join(tmpdir(), 'fleetward-tags-')),
    });
  }, 60_000);
  afterAll(async () => {
    await sandbox?.stop();
    if (sandbox) rmSync(sandbox.dir, { recursive: true, force: true });
  });

  describe('acceptance through the CLI', () => {
    let first: PlanJson;

    it('tags plan --json lists the derived tags of every cluster and the missing owners', async () => {
      const run = await runTagsJson<PlanJson>(['plan', '--config', sandbox.configPath]);
      expect(run.code, run.stderr).toBe(0);
      first = run.json;

      const cloudClusters = sandbox.fleet.filter((c) => c.cloud !== 'kubeconfig');
      const taggable = first.clusters.filter((p) => p.taggable);
      expect(taggable).toHaveLength(cloudClusters.length);
      expect(first.clusters.filter((p) => !p.taggable).every((p) => p.cloud === 'kubeconfig')).toBe(true);
      for (const p of taggable) {
        const keys = p.changes.map((c) => c.key);
        expect(keys).toEqual(expect.arrayContaining(['region', 'cloud', 'managed-by']));
        expect(p.changes.find((c) => c.key === 'cloud')?.after).toBe(p.cloud);
        expect(p.changes.find((c) => c.key === 'managed-by')?.after).toBe('fleetward');
        expect(keys).not.toContain('owner');
      }
      const missingOwner = taggable.filter((p) =>
        p.findings.some((f) => f.kind === 'missing-tag' && f.key === 'owner'),
      );
      expect(missingOwner).toHaveLength(cloudClusters.filter((c) => c.tags.owner === undefined).length);
      expect(missingOwner.length).toBeGreaterThan(0);
      expect(first.summary.changes).toBeGreaterThan(1);
      expect(writes()).toBe(0);
    }, 30_000);

    it('tags apply --max-changes 1 refuses a larger plan, exits non-zero and writes nothing', async () => {
      const run = await runTags(['apply', '--max-changes', '1', '--config', sandbox.configPath]);

      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /refusing to apply: the plan changes the tags of \d+ clusters \(\d+ tag changes\), more than the limit of 1 \(raise/,
      );
      expect(writes()).toBe(0);
    }, 30_000);

    it('tags apply writes them, keeping every existing tag', async () => {
      const before = await cloudTags();
      const run = await runTagsJson<TagApplyResult>(['apply', '--config', sandbox.configPath]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.json.dryRun).toBe(false);
      expect(run.json.summary.failed).toBe(0);
      expect(run.json.summary.applied).toBe(first.summary.clusters);

      const after = await cloudTags();
      for (const p of first.clusters.filter((x) => x.taggable)) {
        const tags = after.get(p.clusterId)!;
        for (const c of p.changes) expect(tags[c.key], `${p.clusterId} ${c.key}`).toBe(c.after);
        // Existing tags (team, environment, owner) are all still there.
        expect(tags).toMatchObject(before.get(p.clusterId)!);
      }
      for (const [, op] of WRITES) expect(sandbox.log.entries.some((e) => e.operation === op)).toBe(true);
    }, 30_000);

    it('a second plan shows 0 changes and the same findings; a second apply writes nothing', async () => {
      const plan = await runTagsJson<PlanJson>(['plan', '--config', sandbox.configPath]);
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.json.summary.changes).toBe(0);
      const findings = (p: PlanJson) =>
        p.clusters.flatMap((c) => c.findings.map((f) => `${c.clusterId} ${f.kind} ${f.key}`)).sort();
      expect(findings(plan.json)).toEqual(findings(first));
      expect(plan.json.summary.findings).toBeGreaterThan(0);

      const text = await runTags(['plan', '--config', sandbox.configPath]);
      expect(text.stdout).toContain('! owner: missing (required; not invented)');
      expect(text.stdout).toMatch(/Plan: 0 changes on 0 clusters, \d+ findings\./);
      const notTaggable = plan.json.summary.notTaggable;
      expect(text.stdout.trimEnd().split('\n').at(-1)).toBe(
        `Summary: ${plan.json.summary.findings} findings, ${notTaggable} not taggable (exit 0: done)`,
      );

      const writesBefore = writes();
      const again = await runTagsJson<TagApplyResult>(['apply', '--config', sandbox.configPath]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.json.summary.applied).toBe(0);
      expect(writes()).toBe(writesBefore);
    }, 30_000);
  });

  describe('one cluster id everywhere', () => {
    it('names each cluster in the plan by the id --cluster takes', async () => {
      const all = await runTags(['plan', '--config', sandbox.configPath]);
      const headings = all.stdout.split('\n').filter((l) => /^[~!x] /.test(l));
      const id = headings[0]!.slice(2);

      const one = await runTags(['plan', '--cluster', id, '--config', sandbox.configPath]);

      expect(headings.length).toBeGreaterThan(0);
      expect(all.stdout.split('\n').filter((l) => l.length > 120)).toEqual([]);
      expect(
        sandbox.fleet.some((c) => id.endsWith(`/${c.name}`) && id.startsWith(`${c.cloud}/${c.scope}/`)),
      ).toBe(true);
      expect(one.code, one.stderr).toBe(0);
      expect(one.stdout.split('\n').filter((l) => /^[~!x] /.test(l))).toEqual([headings[0]]);
    }, 60_000);
  });

  describe('through the job', () => {
    it('one cloud failing leaves the others applied, names the failed clusters, and never sends refused values', async () => {
      const config = await loadConfig(sandbox.configPath);
      // New work for every cluster: the country tag, and a contact default GKE labels cannot hold.
      config.policies.tags.derived.push('country');
      config.policies.tags.required.contact = { default: 'Fleet@Example.com' };
      config.clouds.azure!.maxAttempts = 2;
      sandbox.faults.add({
        cloud: 'azure',
        operation: 'managedClusters.updateTags',
        fault: { kind: 'error', status: 500 },
      });
      const store = await openStateStore(config.state);
      const taggers = createTaggers(config, { logger: silentLogger });
      let result: TagApplyResult;
      sandbox.log.clear();
      try {
        result = await apply(
          { config, store, taggers, logger: silentLogger, clock: systemClock },
          { dryRun: false },
        );
      } finally {
        sandbox.faults.clear();
        await taggers.close();
        await store.close();
      }

      const byCloud = (cloud: Cluster['cloud']) => result.outcomes.filter((o) => o.cloud === cloud);
      expect(byCloud('azure').length).toBeGreaterThan(0);
      for (const o of byCloud('azure')) {
        expect(o.status).toBe('failed');
        expect(o.status === 'failed' && o.error.message).toMatch(/500/);
      }
      for (const o of [...byCloud('aws'), ...byCloud('gcp')]) expect(o.status).toBe('applied');
      expect(result.summary.failed).toBe(byCloud('azure').length);
      // In-process, the writes use the plan just made: per GKE cluster one read for the plan and
      // the one setLabels needs for its fingerprint, no third read to plan again.
      expect(sandbox.log.count('gcp', 'GetCluster')).toBe(2 * byCloud('gcp').length);

      const tags = await cloudTags();
      for (const o of [...byCloud('aws'), ...byCloud('gcp')]) {
        expect(tags.get(o.clusterId)?.country).toMatch(/^[a-z]{2}$/);
      }
      for (const o of byCloud('azure')) expect(tags.get(o.clusterId)?.country).toBeUndefined();
      for (const o of byCloud('aws')) expect(tags.get(o.clusterId)?.contact).toBe('Fleet@Example.com');
      for (const o of byCloud('gcp')) {
        expect(tags.get(o.clusterId)?.contact).toBeUndefined();
        expect(o.findings).toContainEqual(
          expect.objectContaining({ kind: 'unsendable-tag', key: 'contact' }),
        );
      }
    }, 30_000);
  });
});

describe('GKE labels written while someone else writes them', () => {
  const PROJECT = 'example-project';
  const LOCATION = 'europe-west3';
  const log = new RequestLog();
  let fake: GkeFake;
  let raceOnce: 'once' | 'always' | 'never' = 'never';
  let raced = 0;
  const target: Cluster = {
    id: `gcp/${PROJECT}/${LOCATION}/busy`,
    cloud: 'gcp',
    scope: PROJECT,
    region: LOCATION,
    name: 'busy',
    kubernetesVersion: null,
    endpoint: null,
    endpointAccess: 'public',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'RUNNING',
    createdAt: null,
    country: 'DE',
    jurisdiction: 'eu',
  };

  beforeAll(async () => {
    fake = await startGkeFake({
      log,
      onSetLabels: (call) => {
        if (raceOnce === 'never' || (raceOnce === 'once' && raced > 0)) return;
        raced++;
        // Another writer adds its label between our read and our write.
        fake.updateLabels(call.project, call.location, call.cluster, {
          team: 'platform',
          [`concurrent-${raced}`]: 'yes',
        });
      },
    });
  });
  afterAll(async () => {
    await fake?.stop();
  });

  function tagger() {
    return createGkeTagger(
      GcpConfig.parse({ endpoint: fake.endpoint, insecure: true, projects: [{ id: PROJECT }] }),
      { logger: silentLogger },
    );
  }

  it('re-reads and retries once on a stale fingerprint; the concurrent label survives', async () => {
    fake.setClusters(PROJECT, [
      gkeCluster({ name: 'busy', location: LOCATION, resourceLabels: { team: 'platform' } }),
    ]);
    raceOnce = 'once';
    raced = 0;
    log.clear();
    const t = tagger();
    try {
      await t.write(target, { jurisdiction: 'eu', 'managed-by': 'fleetward' });
      expect(await t.read(target)).toEqual({
        team: 'platform',
        'concurrent-1': 'yes',
        jurisdiction: 'eu',
        'managed-by': 'fleetward',
      });
      expect(log.count('gcp', 'SetLabels')).toBe(2);

      // Already in place: no write at all.
      log.clear();
      await t.write(target, { jurisdiction: 'eu' });
      expect(log.count('gcp', 'SetLabels')).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('gives up after one retry when the labels keep changing, losing nothing', async () => {
    fake.setClusters(PROJECT, [
      gkeCluster({ name: 'busy', location: LOCATION, resourceLabels: { team: 'platform' } }),
    ]);
    raceOnce = 'always';
    raced = 0;
    log.clear();
    const t = tagger();
    try {
      await expect(t.write(target, { jurisdiction: 'eu' })).rejects.toMatchObject({
        name: 'CloudApiError',
        operation: 'SetLabels',
        message: expect.stringMatching(/fingerprint mismatch/),
      });
      expect(log.count('gcp', 'SetLabels')).toBe(2);
      expect(await t.read(target)).toEqual({ team: 'platform', 'concurrent-2': 'yes' });
    } finally {
      raceOnce = 'never';
      await t.close();
    }
  });
});

describe('AKS tags written while someone else writes them', () => {
  const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';
  const TOKEN_ENV = 'FLEETWARD_TAGS_TEST_ARM_TOKEN';
  const log = new RequestLog();
  let certDir: string;
  let fake: ArmFake;
  let races: 'never' | 'once' | 'always' = 'never';
  let raced = 0;
  const target: Cluster = {
    id: `azure/${SUBSCRIPTION}/germanywestcentral/busy`,
    cloud: 'azure',
    scope: SUBSCRIPTION,
    region: 'germanywestcentral',
    name: 'busy',
    resourceGroup: 'rg-fleet',
    kubernetesVersion: null,
    endpoint: null,
    endpointAccess: 'public',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'Succeeded',
    createdAt: null,
    country: 'DE',
    jurisdiction: 'eu',
  };

  beforeAll(async () => {
    process.env[TOKEN_ENV] = 'sandbox-token';
    certDir = mkdtempSync(join(tmpdir(), 'fleetward-aks-tags-race-'));
    fake = await startArmFake({
      log,
      certDir,
      onClusterWrite: (cluster) => {
        if (races === 'never' || (races === 'once' && raced > 0)) return;
        raced++;
        // Another writer adds its tag between our read and our write.
        fake.setClusterTags(cluster.id, { ...cluster.tags, [`concurrent-${raced}`]: 'yes' });
      },
    });
  });
  afterAll(async () => {
    delete process.env[TOKEN_ENV];
    await fake?.stop();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  function setCluster(tags: Record<string, string>) {
    fake.setClusters(SUBSCRIPTION, [
      aksCluster({
        subscriptionId: SUBSCRIPTION,
        resourceGroup: 'rg-fleet',
        name: 'busy',
        location: 'germanywestcentral',
        tags,
      }),
    ]);
  }
  function tagger() {
    return createAksTagger(
      AzureConfig.parse({
        endpoint: fake.endpoint,
        caFile: fake.caFile,
        credential: { type: 'access-token', env: TOKEN_ENV },
        maxAttempts: 1,
        subscriptions: [{ id: SUBSCRIPTION }],
      }),
      { logger: silentLogger },
    );
  }

  it('writes with If-Match on the eTag it read; on 412 re-reads once, and the concurrent tag survives', async () => {
    setCluster({ team: 'platform' });
    races = 'once';
    raced = 0;
    log.clear();
    const t = tagger();
    try {
      await t.write(target, { jurisdiction: 'eu', 'managed-by': 'fleetward' });
      expect(await t.read(target)).toEqual({
        team: 'platform',
        'concurrent-1': 'yes',
        jurisdiction: 'eu',
        'managed-by': 'fleetward',
      });
      expect(log.count('azure', 'managedClusters.updateTags')).toBe(2);
    } finally {
      races = 'never';
      await t.close();
    }
  });

  it('gives up after one retry when the tags keep changing, losing nothing', async () => {
    setCluster({ team: 'platform' });
    races = 'always';
    raced = 0;
    log.clear();
    const t = tagger();
    try {
      await expect(t.write(target, { jurisdiction: 'eu' })).rejects.toMatchObject({
        name: 'CloudApiError',
        status: 412,
      });
      expect(log.count('azure', 'managedClusters.updateTags')).toBe(2);
      expect(await t.read(target)).toEqual({
        team: 'platform',
        'concurrent-1': 'yes',
        'concurrent-2': 'yes',
      });
    } finally {
      races = 'never';
      await t.close();
    }
  });
});
