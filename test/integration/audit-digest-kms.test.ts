/**
 * The signed hourly digests against moto: a KMS key (ECC_NIST_P256, SIGN_VERIFY, named by
 * alias) signs through the KMS adapter, the digests and the public key land in an S3 Object
 * Lock evidence bucket, `verifyDigests` finds the chain intact, openssl verifies a digest with
 * the published key alone, and a second version of an archived object (S3 keeps both) is named.
 *
 * moto 5.2.1 signs `MessageType: RAW` messages; it ignores `DIGEST` (and the 4096-byte RAW
 * limit), so these digests stay small and go RAW, as real KMS takes them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPrefix, sha256Hex } from '../../shared/audit/chunks.ts';
import {
  digestKey,
  HOUR_MS,
  hourOf,
  parseDigest,
  publicKeyKey,
  signatureKey,
} from '../../shared/audit/digest.ts';
import { createS3ArchiveStore } from '../../shared/clouds/aws/evidence.ts';
import { createKmsDigestSigner, type KmsDigestSigner } from '../../shared/clouds/aws/kms.ts';
import { AwsConfig, Jurisdiction } from '../../shared/config/schema.ts';
import { type DigestJobDeps, digest, verifyDigests } from '../../shared/jobs/audit-digest.ts';
import type { ArchiveStore } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { createLockedBucket } from '../sandbox/aws-audit.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { auditCluster as cluster } from '../unit/audit-builders.ts';

const REGION = 'eu-central-1';
const BUCKET = 'fw-evidence-digests';
const TESTING = { accessKeyId: 'testing', secretAccessKey: 'testing' };

let moto: MotoServer;
let config: AwsConfig;
let alias: string;
let signer: KmsDigestSigner;
let store: ArchiveStore;
let state: SqliteStateStore;
let deps: DigestJobDeps;
const objects: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  config = AwsConfig.parse({
    endpoint: moto.url,
    maxAttempts: 2,
    accounts: [
      { id: '111122223333', roleArn: 'arn:aws:iam::111122223333:role/fleetward-reader', regions: [REGION] },
    ],
  });
  const kms = new KMSClient({ endpoint: moto.url, region: REGION, credentials: TESTING });
  const key = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
  await kms.send(
    new CreateAliasCommand({
      AliasName: 'alias/fleetward-audit-digests',
      TargetKeyId: key.KeyMetadata!.KeyId!,
    }),
  );
  kms.destroy();
  alias = `arn:aws:kms:${REGION}:${key.KeyMetadata!.Arn!.split(':')[4]}:alias/fleetward-audit-digests`;
  await createLockedBucket(moto.url, BUCKET, REGION, 400);
  store = createS3ArchiveStore(config, { bucket: BUCKET, region: REGION }, { logger: silentLogger });
  for (const name of ['00000001.ndjson.gz', '00000001.ndjson.gz.manifest.json']) {
    const body = new TextEncoder().encode(`{"object":"${name}"}\n`);
    const key = `${clusterPrefix(cluster.id)}2026/12/01/${name}`;
    await store.create(key, body, { sha256: sha256Hex(body), contentType: 'application/json' });
    objects.push(key);
  }
  signer = createKmsDigestSigner(config, alias, { logger: silentLogger });
  state = new SqliteStateStore({ path: ':memory:' });
  await state.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);
  // moto stamps objects with the real time: "now" is two hours later, so their hour is due.
  const now = hourOf(Date.now()) + 2 * HOUR_MS + 30 * 60_000;
  deps = {
    config: { jurisdictions: { eu: Jurisdiction.parse({ preset: 'eu-gdpr' }) } },
    store: state,
    residency: new Residency({ eu: { preset: 'eu-gdpr' } }),
    logger: silentLogger,
    clock: { now: () => new Date(now) },
    archives: { for: async () => store },
    signers: { for: async () => signer },
    allowLocalEvidence: false,
  };
}, 60_000);

afterAll(async () => {
  signer?.close();
  await state?.close();
  await moto?.stop();
});

describe('digests signed by KMS into an Object Lock bucket (moto)', () => {
  it('writes compliant digests whose signatures KMS made, and verifies the chain', async () => {
    const result = await digest(deps);
    const verified = await verifyDigests(deps, { graceMinutes: 0 });

    expect(result.outcomes[0], JSON.stringify(result.outcomes[0])).toMatchObject({
      status: 'written',
      compliant: true,
    });
    const first = parseDigest((await store.get(digestKey(cluster.id, hourOf(Date.now()))))!);
    expect(first).toMatchObject({ keyId: alias, algorithm: 'ECDSA_SHA_256', compliant: true });
    expect(first.objects.map((o) => o.key)).toEqual(objects);
    expect(verified.clusters[0]!.digests).toMatchObject({ status: 'intact', problems: [] });
  });

  it.skipIf(!hasOpenssl())(
    'lets openssl verify a KMS-signed digest with the published key alone',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fleetward-openssl-'));
      try {
        const key = digestKey(cluster.id, hourOf(Date.now()));
        const d = parseDigest((await store.get(key))!);
        writeFileSync(join(dir, 'key.pem'), (await store.get(publicKeyKey(d.publicKeyFingerprint)))!);
        writeFileSync(join(dir, 'digest.json'), (await store.get(key))!);
        writeFileSync(join(dir, 'digest.json.sig'), (await store.get(signatureKey(key)))!);

        const out = execFileSync(
          'openssl',
          ['dgst', '-sha256', '-verify', 'key.pem', '-signature', 'digest.json.sig', 'digest.json'],
          { cwd: dir },
        ).toString();

        expect(out.trim()).toBe('Verified OK');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('names a second version of an archived object (S3 keeps both)', async () => {
    const s3 = new S3Client({
      endpoint: moto.url,
      region: REGION,
      credentials: TESTING,
      forcePathStyle: true,
    });
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: objects[0], Body: '{"object":"rewritten"}\n' }),
    );
    s3.destroy();

    const verified = await verifyDigests(deps, { graceMinutes: 0 });

    expect(verified.ok).toBe(false);
    expect(verified.clusters[0]!.digests.problems).toContainEqual(
      expect.objectContaining({ problem: 're-versioned-object', key: objects[0], store: `aws:${BUCKET}` }),
    );
  });
});

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
