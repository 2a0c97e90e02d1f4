/**
 * Acceptance of audit archiving: the CLI against the whole sandbox — collect into write-once
 * evidence buckets on every cloud, verify the chains, detect tampering, collect again.
 *
 * The first collect and verify run once, before any test (Prepare), so every test holds on its
 * own, whatever the order, the shuffle seed or the name filter: no test relies on another
 * having run (or not run) before it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summaryLine } from '../../bin/output.ts';
import type { CollectResult, VerifyResult } from '../../shared/jobs/audit.ts';
import { alterObject, seedAuditLogs } from '../sandbox/aws-audit.ts';
import { runFleetward, runFleetwardJson } from '../sandbox/cli.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

describe('audit archiving against the sandbox', () => {
  let sandbox: Sandbox;
  let config: string[];
  let first: { code: number | null; json: CollectResult };
  let verified: { code: number | null; json: VerifyResult };

  beforeAll(async () => {
    sandbox = await startSandbox({ clusters: 24, dir: mkdtempSync(join(tmpdir(), 'fleetward-audit-')) });
    config = ['--config', sandbox.configPath, '--log-level', 'error'];
    first = await runFleetwardJson<CollectResult>(['audit', 'collect', ...config]);
    verified = await runFleetwardJson<VerifyResult>(['audit', 'verify', ...config]);
  });
  afterAll(async () => {
    await sandbox?.stop();
  });

  it('archives every cluster with audit logging on, on all three clouds, and records findings for the others', async () => {
    const run = first;

    expect(run.code).toBe(1); // findings for clusters without audit logging
    const archived = run.json.outcomes.filter((o) => o.status === 'archived');
    for (const cloud of ['aws', 'gcp', 'azure']) {
      expect(
        archived.some((o) => o.clusterId.startsWith(`${cloud}/`)),
        cloud,
      ).toBe(true);
    }
    for (const o of archived) {
      expect(o, o.clusterId).toMatchObject({ events: expect.any(Number), compliantStorage: true });
      expect(o.status === 'archived' && o.events).toBeGreaterThan(0);
    }
    const skipped = run.json.outcomes.filter((o) => o.status === 'skipped');
    const kinds = skipped.flatMap((o) => (o.status === 'skipped' ? o.findings.map((f) => f.kind) : []));
    expect(kinds).toContain('audit-logging-off');
    expect(run.json.outcomes.filter((o) => o.status === 'failed')).toEqual([]);
    // The seeded audit-off cluster and the AKS cluster without a diagnostic setting are among them.
    const auditOff = sandbox.fleet.filter((c) => c.cloud === 'aws' && !c.auditLogging).map((c) => c.name);
    for (const name of auditOff) expect(skipped.some((o) => o.clusterId.endsWith(`/${name}`))).toBe(true);
  });

  it('reports every chain intact', async () => {
    const { code, json } = verified;

    expect(code).toBe(0);
    expect(json.ok).toBe(true);
    expect(json.clusters.filter((c) => c.chunks > 0).length).toBeGreaterThan(10);
  });

  it.each([
    ['collect', [['archived', 'up-to-date', 'skipped', 'failed']]],
    // The chains, then the signed digests: each cluster has one line in each part.
    [
      'verify',
      [
        ['intact', 'BROKEN', 'UNVERIFIED', 'nothing'],
        ['digests intact', 'digests BROKEN', 'digests UNVERIFIED', 'digests none'],
      ],
    ],
  ])(
    'prints audit %s within 120 columns and ends with a summary line that counts its lines',
    async (sub, parts) => {
      const run = await runFleetward(['audit', sub, ...config]);
      const lines = run.stdout.trimEnd().split('\n');
      // Each cluster's line starts with its state; the summary counts them in the same order.
      const label: Record<string, string> = {
        'up-to-date': 'up to date',
        BROKEN: 'broken',
        UNVERIFIED: 'unverified',
        nothing: 'nothing archived',
        'digests BROKEN': 'digests broken',
        'digests UNVERIFIED': 'digests unverified',
        'digests none': 'no digests',
      };
      const counted = parts.map((words) =>
        Object.fromEntries(
          words.map((w) => [label[w] ?? w, lines.filter((l) => l.startsWith(`${w} `)).length]),
        ),
      );

      expect(lines.filter((l) => l.length > 120)).toEqual([]);
      for (const counts of counted) {
        expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(sandbox.fleet.length);
      }
      expect(lines.at(-1)).toBe(summaryLine(Object.assign({}, ...counted), run.code ?? -1));
    },
  );

  it('writes only new events on a second collect', async () => {
    const cluster = sandbox.fleet.find(
      (c) => c.cloud === 'aws' && c.auditLogging && c.region.startsWith('eu-'),
    )!;
    await seedAuditLogs(
      sandbox.moto.url,
      [{ account: cluster.scope, region: cluster.region, name: cluster.name }],
      {
        eventsPerCluster: 7,
        malformed: 0,
        start: new Date(Date.now() - 60_000),
        spacingMs: 1_000,
        seed: 7,
      },
    );

    const { json } = await runFleetwardJson<CollectResult>(['audit', 'collect', ...config]);

    const grown = json.outcomes.find(
      (o) => o.clusterId === `aws/${cluster.scope}/${cluster.region}/${cluster.name}`,
    );
    expect(grown).toMatchObject({ status: 'archived', events: 7 });
    for (const o of json.outcomes.filter((x) => x !== grown && x.status !== 'skipped')) {
      expect(o, o.clusterId).toMatchObject({ status: 'up-to-date', events: 0 });
    }
  });

  it('names the chunk an attacker rewrote (a new version on the locked bucket)', async () => {
    const s3 = new S3Client({
      endpoint: sandbox.moto.url,
      region: 'eu-central-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const listed = await s3.send(
      new ListObjectVersionsCommand({ Bucket: 'fleetward-evidence-eu', Prefix: 'audit/aws/' }),
    );
    const chunk = listed.Versions?.map((v) => v.Key!).find((k) => k.endsWith('.ndjson.gz'));
    s3.destroy();
    expect(chunk).toBeDefined();
    await alterObject(sandbox.moto.url, 'fleetward-evidence-eu', chunk!, Buffer.from('{"forged":true}\n'));

    const run = await runFleetward(['audit', 'verify', ...config]);

    expect(run.code).toBe(1);
    expect(run.stdout).toContain(chunk!);
    expect(run.stdout).toMatch(/BROKEN/);
  });
});
