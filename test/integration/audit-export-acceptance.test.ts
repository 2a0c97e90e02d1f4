/**
 * Issue acceptance, against the whole sandbox: one cluster per cloud in the EU jurisdiction is
 * put in export mode (`audit.clusters`), `audit plan` then `audit apply` set up each cloud's own
 * export path, events reach the evidence stores with no Fleetward code in the path (moto's
 * subscription -> Firehose -> S3; the Logging fake's sink -> the GCS fake; the ARM fake's
 * diagnostic setting -> Azurite), the digest job signs every hour with a KMS key in the
 * jurisdiction's region, and the verification reports every chain intact and every digest
 * signature valid.
 *
 * Digests cover whole hours only once they are over: the digest job and the verification run
 * in-process with a clock two hours ahead (as the hourly schedule would run them later); `audit
 * verify --json` is run as a user runs it too, at the real time, for the pull chains.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseDigest } from '../../shared/audit/digest.ts';
import { loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { type DigestVerifyResult, digest, verifyDigests } from '../../shared/jobs/audit-digest.ts';
import type { ExportApplyResult, ExportPlanResult } from '../../shared/jobs/audit-export.ts';
import type { Cluster as DiscoveredCluster } from '../../shared/model.ts';
import { digestJobDeps } from '../../shared/runtime/deps/audit-digest.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { seedAuditLogs } from '../sandbox/aws-audit.ts';
import { runFleetwardJson } from '../sandbox/cli.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

const REGION = 'eu-central-1';
const TESTING = { accessKeyId: 'testing', secretAccessKey: 'testing' };

let sandbox: Sandbox;
let configPath: string;
let config: FleetConfig;
/** The export-mode cluster of each cloud. */
const chosen: Record<'aws' | 'gcp' | 'azure', DiscoveredCluster | undefined> = {
  aws: undefined,
  gcp: undefined,
  azure: undefined,
};
let planned: ExportPlanResult;
let applied: ExportApplyResult;
let replanned: ExportPlanResult;

const args = () => ['--config', configPath, '--jurisdiction', 'eu', '--json', '--log-level', 'error'];

beforeAll(async () => {
  sandbox = await startSandbox({ dir: join('.fleetward', 'sandbox-audit-export') });
  const kms = new KMSClient({ endpoint: sandbox.moto.url, region: REGION, credentials: TESTING });
  const key = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
  await kms.send(
    new CreateAliasCommand({
      AliasName: 'alias/fleetward-audit-digests-eu',
      TargetKeyId: key.KeyMetadata!.KeyId!,
    }),
  );
  kms.destroy();
  const account = key.KeyMetadata!.Arn!.split(':')[4];

  const discovered = await runFleetwardJson<{ clusters: DiscoveredCluster[] }>([
    'discover',
    '--config',
    sandbox.configPath,
    '--json',
  ]);
  const eu = discovered.json.clusters.filter((c) => c.jurisdiction === 'eu' && c.auditLogging !== false);
  // EKS export delivers into the evidence bucket of the cluster's own region (eu-central-1).
  chosen.aws = eu.find((c) => c.cloud === 'aws' && c.region === REGION);
  chosen.gcp = eu.find((c) => c.cloud === 'gcp');
  chosen.azure = eu.find((c) => c.cloud === 'azure');

  const raw = parse(readFileSync(sandbox.configPath, 'utf8')) as {
    jurisdictions: Record<string, { audit?: unknown }>;
  };
  raw.jurisdictions.eu!.audit = {
    mode: 'pull',
    clusters: Object.fromEntries(
      Object.values(chosen)
        .filter((c) => c !== undefined)
        .map((c) => [c.id, 'export']),
    ),
    digestKey: `arn:aws:kms:${REGION}:${account}:alias/fleetward-audit-digests-eu`,
    digestDelayMinutes: 0,
  };
  configPath = join(sandbox.dir, 'fleet-export.yaml');
  writeFileSync(configPath, stringify(raw));
  config = await loadConfig(configPath);

  planned = (await runFleetwardJson<ExportPlanResult>(['audit', 'plan', ...args()])).json;
  applied = (await runFleetwardJson<ExportApplyResult>(['audit', 'apply', ...args()])).json;
  replanned = (await runFleetwardJson<ExportPlanResult>(['audit', 'plan', ...args()])).json;
}, 240_000);

afterAll(async () => {
  await sandbox?.stop();
});

const planOf = (result: ExportPlanResult, id: string | undefined) =>
  result.plans.find((p) => p.clusterId === id);

describe('audit export, digests and verification on the sandbox (acceptance)', () => {
  it('has an export-mode cluster on each cloud', () => {
    expect(chosen.aws?.id).toMatch(/^aws\//);
    expect(chosen.gcp?.id).toMatch(/^gcp\//);
    expect(chosen.azure?.id).toMatch(/^azure\//);
  });

  it.each(['aws', 'gcp', 'azure'] as const)(
    'plans, applies and then finds nothing to change on %s',
    (cloud) => {
      const id = chosen[cloud]?.id;
      expect(planOf(planned, id)?.action).toBe('create');
      expect(applied.outcomes.find((o) => o.clusterId === id)?.status).toBe('applied');
      expect(planOf(replanned, id)?.action).toBe('none');
      expect(planOf(replanned, id)?.findings ?? []).toEqual([]);
    },
  );

  it('delivers new events into the evidence stores with no Fleetward code in the path', async () => {
    const aws = chosen.aws!;
    const gcp = chosen.gcp!;
    const before = sandbox.log.entries.length;
    const start = new Date(Date.now() - 60_000);
    await seedAuditLogs(sandbox.moto.url, [{ account: aws.scope, region: aws.region, name: aws.name }], {
      eventsPerCluster: 5,
      malformed: 0,
      start,
      spacingMs: 1_000,
    });
    sandbox.audit!.logging.seed(gcp.scope, gcp.region, gcp.name, 5, { start, spacingMs: 1_000 });
    sandbox.audit!.logging.deliverSinks();
    // Delivery was the clouds' own: no fake recorded a call while the events travelled (the
    // seeding writes to moto and the Logging fake directly, as the clusters would).
    expect(sandbox.log.entries.slice(before)).toEqual([]);
    // Azure Monitor's appends reach the storage account through the sandbox's blob proxy, which
    // records them: blob writes only, and nothing else.
    const azure = chosen.azure!;
    const blobs = await sandbox.audit!.deliverAksDiagnostics(
      { scope: azure.scope, resourceGroup: azure.resourceGroup, name: azure.name },
      5,
      { start, spacingMs: 1_000 },
    );
    expect(blobs.length).toBeGreaterThan(0);
    expect(
      [...new Set(sandbox.log.entries.slice(before).map((e) => `${e.cloud}:${e.operation}`))].sort(),
    ).toEqual(['azure:PutBlob', 'azure:SetBlob:appendblock']);

    const deps = await digestJobDeps(config, silentLogger);
    try {
      for (const cloud of ['aws', 'gcp', 'azure'] as const) {
        const cluster = chosen[cloud]!;
        const sources = await deps.objects!.for({ ...cluster, status: 'running' } as never);
        const exported = sources.at(-1)!;
        const listed = await exported.store.list(exported.prefix);
        expect(listed.length, `${cloud}: objects under ${exported.prefix}`).toBeGreaterThan(0);
      }
    } finally {
      deps.close();
      await deps.store.close();
    }
  });

  it('signs every hour with the KMS key, and every chain and signature verifies', async () => {
    const later = new Date(Date.now() + 2 * 3600_000);
    const deps = await digestJobDeps(config, silentLogger);
    const clock = { now: () => later };
    let verified: DigestVerifyResult;
    try {
      const written = await digest({ ...deps, clock }, { jurisdiction: 'eu' });
      for (const c of Object.values(chosen)) {
        const outcome = written.outcomes.find((o) => o.clusterId === c?.id);
        expect(outcome?.status, JSON.stringify(outcome)).toBe('written');
      }
      verified = await verifyDigests({ ...deps, clock }, { jurisdiction: 'eu', graceMinutes: 0 });
      // The digests list what each cloud exported, by the exporter's prefix, and are KMS-signed.
      for (const c of Object.values(chosen)) {
        const cluster = c!;
        const exported = (await deps.objects!.for(cluster)).at(-1)!;
        const evidence = await deps.archives.for(cluster);
        const listed: string[] = [];
        for (const { key } of await evidence.list(`digests/${cluster.id}/`)) {
          if (!key.endsWith('.json')) continue;
          const d = parseDigest((await evidence.get(key))!);
          expect(d.compliant).toBe(true);
          expect(d.keyId).toContain(':alias/fleetward-audit-digests-eu');
          listed.push(...d.objects.filter((o) => o.store === exported.store.id).map((o) => o.key));
        }
        expect(
          listed.filter((k) => k.startsWith(exported.prefix)).length,
          `${cluster.id}: exported objects in its digests`,
        ).toBeGreaterThan(0);
      }
    } finally {
      deps.close();
      await deps.store.close();
    }
    expect(verified.ok).toBe(true);
    for (const c of Object.values(chosen)) {
      const result = verified.clusters.find((r) => r.clusterId === c?.id);
      expect(result?.digests.status, JSON.stringify(result)).toBe('intact');
      expect(result?.digests.hours).toBeGreaterThan(0);
    }
    expect(verified.clusters.filter((r) => r.digests.status === 'broken')).toEqual([]);
  });

  it('reports every pull chain intact with `audit verify --json`', async () => {
    const run = await runFleetwardJson<{ ok: boolean; clusters: { status: string }[] }>([
      'audit',
      'verify',
      ...args(),
    ]);
    expect(run.json.clusters.filter((c) => c.status === 'broken' || c.status === 'unverified')).toEqual([]);
  });
});

describe('AKS export drift on the sandbox', () => {
  const clusterArmId = () => {
    const c = chosen.azure!;
    return `/subscriptions/${c.scope}/resourceGroups/${c.resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${c.name}`;
  };
  const evidence = () => {
    const e = config.jurisdictions.eu!.evidence!.azure!;
    return { sub: e.subscriptionId!, rg: e.resourceGroup!, account: e.storageAccount };
  };
  const plan = async () =>
    planOf((await runFleetwardJson<ExportPlanResult>(['audit', 'plan', ...args()])).json, chosen.azure?.id);

  it('leaves another diagnostic setting of the cluster alone, and reports a disabled category as drift that apply mends', async () => {
    const id = clusterArmId();
    const foreign = { name: 'team-workspace', logs: [{ category: 'kube-apiserver', enabled: true }] };
    const ours = sandbox.arm.diagnosticSettings(id).find((s) => s.name === 'fleetward-audit')!;
    sandbox.arm.setDiagnosticSettings(id, [
      foreign,
      { ...ours, logs: ours.logs.map((l) => ({ ...l, enabled: false })) },
    ]);

    const drifted = await plan();
    expect(drifted?.action).toBe('update');
    expect(drifted?.findings.map((f) => f.kind)).toContain('export-disabled');

    await runFleetwardJson<ExportApplyResult>(['audit', 'apply', ...args()]);
    const after = sandbox.arm.diagnosticSettings(id);
    expect(after.find((s) => s.name === 'team-workspace')).toEqual(foreign);
    expect(after.find((s) => s.name === 'fleetward-audit')?.logs).toEqual([
      { category: 'kube-audit-admin', enabled: true },
    ]);
    expect((await plan())?.action).toBe('none');
  });

  it('refuses a destination container whose policy does not allow protected append writes', async () => {
    const { sub, rg, account } = evidence();
    const spec = { versionImmutability: true, policyDays: 400, locked: true };
    sandbox.arm.setBlobContainer(sub, rg, account, 'insights-logs-kube-audit-admin', spec);
    try {
      const refused = await plan();
      expect(refused?.refused).toMatch(/protected append writes/);
    } finally {
      sandbox.arm.setBlobContainer(sub, rg, account, 'insights-logs-kube-audit-admin', {
        ...spec,
        allowProtectedAppendWrites: true,
      });
    }
    expect((await plan())?.refused).toBeUndefined();
  });

  it('refuses a destination container whose immutability policy is unlocked', async () => {
    const { sub, rg, account } = evidence();
    const spec = { versionImmutability: true, policyDays: 400, allowProtectedAppendWrites: true };
    sandbox.arm.setBlobContainer(sub, rg, account, 'insights-logs-kube-audit-admin', {
      ...spec,
      locked: false,
    });
    try {
      expect((await plan())?.refused).toMatch(/not locked/);
    } finally {
      sandbox.arm.setBlobContainer(sub, rg, account, 'insights-logs-kube-audit-admin', {
        ...spec,
        locked: true,
      });
    }
    expect((await plan())?.refused).toBeUndefined();
  });

  it('refuses a storage account outside the jurisdiction', async () => {
    const { sub, rg, account } = evidence();
    sandbox.arm.setStorageAccount(sub, rg, account, { location: 'eastus' });
    try {
      const refused = await plan();
      expect(refused?.refused).toMatch(/eastus|outside|jurisdiction/i);
    } finally {
      sandbox.arm.setStorageAccount(sub, rg, account, { location: 'germanywestcentral' });
    }
    expect((await plan())?.refused).toBeUndefined();
  });
});
