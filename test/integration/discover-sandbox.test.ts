/**
 * Acceptance: the CLI against the whole sandbox (moto + proxy, GKE gRPC fake, ARM fake,
 * kubeconfig fakes), run as a separate process exactly as a user runs it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, DiscoveryFailure, InventoryDiff } from '../../shared/model.ts';
import { runFleetward, runFleetwardJson } from '../sandbox/cli.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

interface DiscoverJson {
  clusters: Cluster[];
  diff: InventoryDiff;
  failures: DiscoveryFailure[];
}

/** `fleetward discover --json` in its own process. */
function discover(configPath: string): Promise<{ code: number | null; json: DiscoverJson; stderr: string }> {
  return runFleetwardJson<DiscoverJson>(['discover', '--config', configPath]);
}

const FIELDS = [
  'id',
  'cloud',
  'scope',
  'region',
  'name',
  'kubernetesVersion',
  'endpoint',
  'endpointAccess',
  'secretsEncryptionKey',
  'auditLogging',
  'tags',
  'status',
  'providerStatus',
  'createdAt',
  'country',
  'jurisdiction',
];

describe('fleetward discover against the sandbox', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox({ clusters: 60, dir: mkdtempSync(join(tmpdir(), 'fleetward-sandbox-')) });
  });
  afterAll(async () => {
    await sandbox?.stop();
  });

  it('returns all 60 clusters with every field, placed by jurisdiction', async () => {
    const { code, json } = await discover(sandbox.configPath);

    expect(json.failures).toEqual([]);
    expect(code).toBe(0);
    expect(json.clusters).toHaveLength(60);
    for (const c of json.clusters) expect(Object.keys(c)).toEqual(expect.arrayContaining(FIELDS));
    const seen = new Set(json.clusters.map((c) => `${c.cloud}:${c.jurisdiction}`));
    for (const cloud of ['aws', 'gcp', 'azure']) {
      for (const j of ['eu', 'in', 'za']) expect(seen).toContain(`${cloud}:${j}`);
    }
    expect(json.clusters.some((c) => c.jurisdiction === 'unassigned')).toBe(true);
    expect(json.clusters.some((c) => c.cloud === 'kubeconfig' && c.kubernetesVersion !== null)).toBe(true);
    expect(json.clusters.some((c) => c.cloud !== 'kubeconfig' && c.secretsEncryptionKey === null)).toBe(true);
    expect(json.clusters.some((c) => c.auditLogging === false)).toBe(true);
    expect(json.diff.added).toHaveLength(60);
  });

  it('reports an empty diff on the second run', async () => {
    const { code, json } = await discover(sandbox.configPath);

    expect(code).toBe(0);
    expect(json.diff).toEqual({ added: [], removed: [], changed: [] });
  });

  it('prints the fleet within 120 columns, each cluster by its id, and ends with the summary line', async () => {
    const run = await runFleetward(['discover', '--config', sandbox.configPath]);
    const lines = run.stdout.trimEnd().split('\n');
    const ids = sandbox.fleet.map((c) =>
      c.cloud === 'azure'
        ? `azure/${c.scope}/${c.resourceGroup}/${c.name}`
        : `${c.cloud}/${c.scope}/${c.region}/${c.name}`,
    );

    expect(run.code).toBe(0);
    expect(lines.filter((l) => l.length > 120)).toEqual([]);
    for (const id of ids)
      expect(
        lines.some((l) => l.trim().split(/\s+/)[0] === id),
        id,
      ).toBe(true);
    expect(lines.at(-1)).toBe('Summary: 60 found (exit 0: done)');
  });

  it('returns a partial result and exits 1 when a whole region is down, losing nothing', async () => {
    const region = 'eu-central-1';
    const inRegion = sandbox.fleet.filter((c) => c.cloud === 'aws' && c.region === region).length;
    sandbox.faults.add({ cloud: 'aws', region, fault: { kind: 'error', status: 503 } });
    try {
      const { code, json } = await discover(sandbox.configPath);

      expect(code).toBe(1);
      expect(inRegion).toBeGreaterThan(0);
      expect(json.failures.length).toBeGreaterThan(0);
      expect(json.failures.every((f) => f.cloud === 'aws' && f.region === region)).toBe(true);
      expect(json.clusters).toHaveLength(60);
      expect(json.diff.removed).toEqual([]);

      // On a terminal: one readable warning per failed scope, and the failures in the summary.
      const text = await runFleetward(['discover', '--config', sandbox.configPath]);
      expect(text.code).toBe(1);
      expect(text.stderr).toMatch(new RegExp(`^warning: Discovery scope failed: .*region ${region}`, 'm'));
      expect(text.stderr).not.toMatch(/^\{"level"/m);
      expect(text.stdout.trimEnd().split('\n').at(-1)).toBe(
        `Summary: 60 found, ${json.failures.length} scope failures (exit 1: completed with failures)`,
      );
    } finally {
      sandbox.faults.clear();
    }
  });
});

describe('discover-clusters handler against the sandbox', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox({ clusters: 12, dir: mkdtempSync(join(tmpdir(), 'fleetward-handler-')) });
    process.env.FLEETWARD_CONFIG = sandbox.configPath;
  });
  afterAll(async () => {
    delete process.env.FLEETWARD_CONFIG;
    await sandbox?.stop();
  });

  const context = {
    functionName: 'fleetward-test-discover-clusters',
    awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
    getRemainingTimeInMillis: () => 60_000,
  } as unknown as Context;

  it('discovers the fleet on a scheduled event and returns a small summary', async () => {
    const { handler } = await import('../../functions/discover-clusters/handler.ts');

    const result = (await handler({ trigger: 'schedule' }, context)) as {
      status: string;
      clusters: number;
      diff: InventoryDiff;
    };

    expect(result.status).toBe('complete');
    expect(result.clusters).toBe(12);
    expect(result.diff.added).toHaveLength(12);
  });

  it('rejects an event that does not match its schema before calling any cloud', async () => {
    const { handler } = await import('../../functions/discover-clusters/handler.ts');
    sandbox.log.clear();

    await expect(handler({ trigger: 'cron', extra: 1 } as never, context)).rejects.toThrow();
    expect(sandbox.log.entries).toEqual([]);
  });
});
