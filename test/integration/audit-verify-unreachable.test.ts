/**
 * `audit verify` when the evidence store cannot be reached: the real S3 archive store pointed
 * at a closed loopback port. The chain is unverified (with the connection error), never
 * broken: an outage is not tampering.
 */
import { describe, expect, it } from 'vitest';
import { renderVerify, verifyCounts } from '../../bin/audit.ts';
import { summaryLine } from '../../bin/output.ts';
import { type ChainHead, headKey } from '../../shared/audit/manifest.ts';
import { createS3ArchiveStore } from '../../shared/clouds/aws/audit.ts';
import { AwsConfig, Jurisdiction } from '../../shared/config/schema.ts';
import { verify } from '../../shared/jobs/audit.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { AUDIT_NS, INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { freePort } from '../sandbox/net.ts';
import { auditCluster } from '../unit/audit-builders.ts';

const cluster = auditCluster;

describe('audit verify with the evidence store unreachable', () => {
  it('reports the chain unverified with the connection error, not broken', async () => {
    // Prepare: a chain of 3 chunks recorded in the state store; the bucket's endpoint is a
    // loopback port nothing listens on.
    const port = await freePort();
    const aws = AwsConfig.parse({
      endpoint: `http://127.0.0.1:${port}`,
      maxAttempts: 2,
      timeoutMs: 2_000,
      accounts: [
        {
          id: '111111111111',
          roleArn: 'arn:aws:iam::111111111111:role/fleetward-reader',
          regions: ['eu-central-1'],
        },
      ],
    });
    const archive = createS3ArchiveStore(
      aws,
      { bucket: 'fleetward-evidence-eu', region: 'eu-central-1' },
      { logger: silentLogger },
    );
    const store = new SqliteStateStore({ path: ':memory:' });
    await store.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);
    const head: ChainHead = {
      seq: 3,
      sha256: 'a'.repeat(64),
      key: `audit/${cluster.id}/2026/11/21/00000003.ndjson.gz`,
      version: 'v3',
      checkpoint: { lastTimestamp: '2026-11-21T10:30:00.000Z' },
      pending: null,
    };
    await store.putMany(AUDIT_NS, [{ key: headKey(cluster.id), value: head }]);

    // Act
    const started = Date.now();
    const result = await verify({
      store,
      archives: { for: async () => archive },
      config: { jurisdictions: { eu: Jurisdiction.parse({ preset: 'eu-gdpr' }) } },
    });
    await store.close();

    // Assess
    expect(result.ok).toBe(false);
    expect(result.counts).toEqual({ intact: 0, broken: 0, unverified: 1, 'nothing-archived': 0 });
    const [c] = result.clusters;
    expect(c).toMatchObject({ clusterId: cluster.id, status: 'unverified', ok: false, chunks: 0 });
    expect(c?.firstProblem).toBeUndefined();
    expect(JSON.stringify(c?.error)).toMatch(/ECONNREFUSED|connect/i);
    const text = renderVerify(result);
    expect(text).toContain(`UNVERIFIED  ${cluster.id}: the archive could not be read`);
    expect(text).not.toContain('BROKEN');
    expect(summaryLine(verifyCounts(result), 1)).toBe(
      'Summary: 1 unverified (exit 1: completed with failures)',
    );
    // Two attempts against a refused port: no long wait before the verdict.
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
