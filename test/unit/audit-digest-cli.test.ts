import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  digestCounts,
  digestVerifyCounts,
  renderDigest,
  renderDigestVerify,
} from '../../bin/audit-digest.ts';
import { summaryLine } from '../../bin/output.ts';
import { digestKey } from '../../shared/audit/digest.ts';
import { digest, verifyDigests } from '../../shared/jobs/audit-digest.ts';
import {
  cluster,
  type DigestEnv,
  digestEnv,
  hourAt,
  putObject,
  regionalSigner,
} from './audit-digest-builders.ts';

const envs: DigestEnv[] = [];
afterEach(async () => {
  for (const e of envs.splice(0)) await e.cleanup();
});

describe('audit digest output', () => {
  it('prints one line per cluster and a summary line of what was written', async () => {
    const e = await digestEnv();
    envs.push(e);
    await putObject(e.dir, e.local, 'a.ndjson.gz', 9);

    const result = await digest(e.deps());
    const text = `${renderDigest(result)}\n${summaryLine(digestCounts(result), 0)}`;

    expect(text).toBe(
      [
        `written     ${cluster.id}: 3 digest(s), last hour 2026-11-21T11:00:00.000Z [local key or`,
        '            storage, not compliant]',
        'Summary: 1 written (exit 0: done)',
      ].join('\n'),
    );
  });

  it('prints a refused key as skipped with its finding', async () => {
    const e = await digestEnv();
    envs.push(e);

    const result = await digest(e.deps({ signer: regionalSigner('us-east-1') }));

    expect(renderDigest(result)).toMatch(/^skipped {5}.*refusing to write audit digest signing key/);
    expect(digestCounts(result)).toMatchObject({ skipped: 1, written: 0 });
  });

  it('names every problem of a broken chain under its cluster, for audit verify', async () => {
    const e = await digestEnv();
    envs.push(e);
    await putObject(e.dir, e.local, 'a.ndjson.gz', 9);
    await digest(e.deps());
    const key = digestKey(cluster.id, hourAt(11));
    await unlink(join(e.dir, ...key.split('/')));

    const result = await verifyDigests(e.deps(), { graceMinutes: 0 });
    const text = renderDigestVerify(result);

    expect(text.split('\n')).toEqual([
      `digests BROKEN      ${cluster.id}: 1 problem(s); 2 digest(s), 2026-11-21T09:00:00.000Z to`,
      '                    2026-11-21T11:00:00.000Z',
      `  missing-digest 2026-11-21T11:00:00.000Z ${key}: no digest`,
      '    for this hour',
    ]);
    expect(digestVerifyCounts(result)).toMatchObject({ 'digests broken': 1, 'digests intact': 0 });
    // The JSON of `audit verify --json`: per cluster {digests: {status, hours, problems}}.
    expect(JSON.parse(JSON.stringify(result)).clusters[0].digests).toMatchObject({
      status: 'broken',
      hours: 2,
      problems: [{ problem: 'missing-digest', key }],
    });
  });
});
