/**
 * S3's bucket owner condition on the evidence buckets, against moto through the recording AWS
 * proxy: every call of the S3 archive store (location, immutability checks, create, read,
 * version listing) sends `ExpectedBucketOwner`, the configured owner account or else the
 * account of the store's own credentials (one STS GetCallerIdentity per process).
 *
 * moto 5.2.1 accepts the header and ignores it (a canary below fails the day it enforces it,
 * when a refusal test should replace it), so the proxy's record of the header is what is checked.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3ArchiveStore } from '../../shared/clouds/aws/audit.ts';
import { callerAccount } from '../../shared/clouds/aws/bucket-owner.ts';
import { AwsConfig } from '../../shared/config/schema.ts';
import type { ArchiveStore, Log } from '../../shared/ports.ts';
import { CloudApiError } from '../../shared/runtime/errors.ts';
import { createLockedBucket } from '../sandbox/aws-audit.ts';
import { type AwsProxy, type AwsRequestInfo, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { freePort } from '../sandbox/net.ts';

/** The account moto gives its default `testing` credentials. */
const MOTO_ACCOUNT = '123456789012';
const OTHER_ACCOUNT = '999988887777';
const REGION = 'eu-central-1';
const BUCKET = 'fw-evidence-owned';
const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

let moto: MotoServer;
let proxy: AwsProxy;
let config: AwsConfig;

const s3Requests = (): AwsRequestInfo[] => proxy.requests().filter((r) => r.service === 's3');

/** Runs every method of the store once; answers, per method, the S3 requests it made. */
async function exerciseEveryMethod(store: ArchiveStore): Promise<Record<string, AwsRequestInfo[]>> {
  const body = new TextEncoder().encode(`{"n":${Date.now()}}\n`);
  const meta = {
    sha256: createHash('sha256').update(body).digest('hex'),
    contentType: 'application/x-ndjson',
  };
  const key = `audit/eu/c/${Date.now()}-${Math.random()}.ndjson`;
  const calls: [string, () => Promise<unknown>][] = [
    ['location', () => store.location()],
    ['assertImmutable', () => store.assertImmutable(400)],
    ['create', () => store.create(key, body, meta)],
    ['get', () => store.get(key)],
    ['list', () => store.list('audit/eu/c/')],
  ];
  const made: Record<string, AwsRequestInfo[]> = {};
  for (const [method, call] of calls) {
    proxy.log.clear();
    await call();
    made[method] = s3Requests();
  }
  return made;
}

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startAwsProxy({ upstream: moto.url });
  config = AwsConfig.parse({
    endpoint: proxy.url,
    maxAttempts: 2,
    accounts: [
      { id: '111122223333', roleArn: 'arn:aws:iam::111122223333:role/fleetward-reader', regions: [REGION] },
    ],
  });
  await createLockedBucket(moto.url, BUCKET, REGION, 400);
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

describe('evidence bucket owner condition', () => {
  it("sends the credentials' own account on every call when the config names none, asking STS once", async () => {
    // Prepare
    proxy.log.clear();
    const first = createS3ArchiveStore(config, { bucket: BUCKET, region: REGION }, { logger: silent });
    const second = createS3ArchiveStore(config, { bucket: BUCKET, region: REGION }, { logger: silent });
    const identities = () => proxy.requests().filter((r) => r.operation === 'GetCallerIdentity');

    // Act
    await first.location();
    const asked = identities().length;
    const made = await exerciseEveryMethod(second);

    // Assess
    expect(asked).toBe(1);
    expect(identities()).toHaveLength(0);
    for (const [method, requests] of Object.entries(made)) {
      expect(requests.length, method).toBeGreaterThan(0);
      expect(
        requests.map((r) => r.expectedBucketOwner),
        method,
      ).toEqual(requests.map(() => MOTO_ACCOUNT));
    }
  });

  it('sends the configured owner account, without asking STS', async () => {
    // Prepare
    const store = createS3ArchiveStore(
      config,
      { bucket: BUCKET, region: REGION, account: MOTO_ACCOUNT },
      { logger: silent },
    );

    // Act
    const made = await exerciseEveryMethod(store);

    // Assess: one S3 request per method, two for the immutability check (lock, versioning).
    expect(
      Object.fromEntries(Object.entries(made).map(([m, rs]) => [m, rs.map((r) => r.expectedBucketOwner)])),
    ).toEqual({
      location: [MOTO_ACCOUNT],
      assertImmutable: [MOTO_ACCOUNT, MOTO_ACCOUNT],
      create: [MOTO_ACCOUNT],
      get: [MOTO_ACCOUNT],
      list: [MOTO_ACCOUNT],
    });
    expect(proxy.requests().filter((r) => r.operation === 'GetCallerIdentity')).toEqual([]);
  });

  it('names the wrong owner when configured so; moto does not refuse it (canary: S3 answers 403)', async () => {
    // Prepare
    const store = createS3ArchiveStore(
      config,
      { bucket: BUCKET, region: REGION, account: OTHER_ACCOUNT },
      { logger: silent },
    );
    proxy.log.clear();

    // Act: real S3 refuses this with 403 AccessDenied; moto 5.2.1 answers it.
    const outcome = await store.location().then(
      () => 'answered',
      (error: unknown) => error,
    );

    // Assess
    expect(s3Requests().map((r) => r.expectedBucketOwner)).toEqual([OTHER_ACCOUNT]);
    // The day moto enforces the condition, this fails: replace it with a refusal test.
    expect(outcome).toBe('answered');
  });

  it('fails the evidence call, naming GetCallerIdentity, when the account cannot be learnt; asks again next time', async () => {
    // Prepare: STS answers 503 to every attempt. The account is kept per endpoint: another
    // spelling of the proxy's URL is a source not asked yet in this process.
    const fresh = { ...config, endpoint: `${proxy.url}/` };
    proxy.faults.add({ operation: 'GetCallerIdentity', fault: { kind: 'error', status: 503 } });
    const store = createS3ArchiveStore(fresh, { bucket: BUCKET, region: REGION }, { logger: silent });
    proxy.log.clear();

    // Act
    const error = await store.location().catch((e: unknown) => e);
    proxy.faults.clear();
    const retried = await callerAccount(fresh, REGION);

    // Assess
    expect(error).toBeInstanceOf(CloudApiError);
    expect((error as Error).message).toMatch(/GetCallerIdentity/);
    // No S3 request left without its owner: none was sent at all.
    expect(s3Requests()).toEqual([]);
    expect(retried).toBe(MOTO_ACCOUNT);
  });

  it('refuses an account id STS cannot be asked for: an unreachable endpoint fails fast', async () => {
    const closed = AwsConfig.parse({
      ...config,
      endpoint: `http://127.0.0.1:${await freePort()}`,
      timeoutMs: 2_000,
    });

    await expect(callerAccount(closed, REGION)).rejects.toBeInstanceOf(CloudApiError);
  });
});
