/**
 * The bucket locator against the local clouds: S3 buckets in moto (through the recording
 * AWS proxy, to see whose credentials asked), Cloud Storage buckets in the GCS fake, Azure
 * storage accounts in the ARM fake; then Velero's backup files written by the bucket writer
 * into moto, the GCS fake and Azurite, and read back.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionOfLocationConstraint } from '../../shared/clouds/aws/buckets.ts';
import { cloudOfProvider, createBucketLocator } from '../../shared/clouds/buckets.ts';
import { FleetConfig } from '../../shared/config/schema.ts';
import type { Cluster } from '../../shared/model.ts';
import type { BucketLocator, BucketRef, Log } from '../../shared/ports.ts';
import { CloudApiError, ConfigError, FleetwardError } from '../../shared/runtime/errors.ts';
import { type ArmFake, startArmFake } from '../sandbox/arm-fake.ts';
import { type AwsProxy, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { type Azurite, blobClient, startAzurite } from '../sandbox/azurite.ts';
import {
  type BackupLocation,
  type BucketSeed,
  type BucketWriter,
  backupObjectKey,
  createBucketWriter,
  veleroBackupFiles,
} from '../sandbox/bucket-writers.ts';
import { FaultInjector, RequestLog } from '../sandbox/faults.ts';
import { type GcsFake, startGcsFake } from '../sandbox/gcs-fake.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';

const ACCOUNT = '111122223333';
const SUBSCRIPTION = '0b1f6471-1bf0-4dda-aec3-111122223333';
const PROJECT = 'fleetward-test';
const GCS_TOKEN = 'sandbox-gcs-token';

const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };
const retried: unknown[] = [];
const recording: Log = { ...silent, info: (message, ...extra) => retried.push({ message, ...extra[0] }) };

function cluster(over: Partial<Cluster> & Pick<Cluster, 'cloud' | 'scope' | 'region' | 'name'>): Cluster {
  return {
    id: `${over.cloud}/${over.scope}/${over.region}/${over.name}`,
    kubernetesVersion: '1.31',
    endpoint: null,
    endpointAccess: 'public',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'RUNNING',
    createdAt: null,
    country: null,
    jurisdiction: 'eu',
    ...over,
  };
}

const EKS = cluster({ cloud: 'aws', scope: ACCOUNT, region: 'eu-central-1', name: 'prod-eu' });
const GKE = cluster({ cloud: 'gcp', scope: PROJECT, region: 'europe-west1', name: 'gke-eu' });
const AKS = cluster({
  cloud: 'azure',
  scope: SUBSCRIPTION,
  region: 'westeurope',
  name: 'aks-eu',
  resourceGroup: 'rg-fleet',
});

const S3_SEEDS: BucketSeed[] = [
  { provider: 'aws', bucket: 'fw-backups-eu-central-1', config: { region: 'eu-central-1' } },
  { provider: 'aws', bucket: 'fw-backups-af-south-1', config: { region: 'af-south-1' } },
  { provider: 'aws', bucket: 'fw-backups-us-east-1', config: { region: 'us-east-1' } },
];
const GCS_SEEDS: BucketSeed[] = [
  { provider: 'gcp', bucket: 'fw-gke-backups-eu', location: 'europe-west1', config: {} },
  { provider: 'gcp', bucket: 'fw-gke-backups-multi', location: 'EU', config: {} },
  { provider: 'gcp', bucket: 'fw-gke-backups-dual', location: 'EUR4', config: {} },
];
const AZURE_SEEDS: BucketSeed[] = [
  {
    provider: 'azure',
    bucket: 'velero',
    location: 'westeurope',
    subscriptionId: SUBSCRIPTION,
    config: { storageAccount: 'fwbackupsweu', resourceGroup: 'rg-backups' },
  },
  {
    provider: 'azure',
    bucket: 'velero-grs',
    location: 'brazilsouth',
    subscriptionId: SUBSCRIPTION,
    storageAccount: { sku: 'Standard_RAGRS', secondaryLocation: 'southcentralus' },
    config: { storageAccount: 'fwbackupsgrs', resourceGroup: 'rg-backups' },
  },
];

const ref = (seed: BucketSeed, config: Record<string, string> = {}): BucketRef => ({
  provider: seed.provider,
  bucket: seed.bucket,
  config: { ...seed.config, ...config },
});

let dir: string;
let moto: MotoServer;
let proxy: AwsProxy;
let gcs: GcsFake;
let guardedGcs: GcsFake;
let arm: ArmFake;
let azurite: Azurite;
let writer: BucketWriter;
let tokenServer: Server;
let tokenRequests = 0;
let externalAccountFile: string;
const gcsFaults = new FaultInjector();
let baseConfig: FleetConfig;
let locator: BucketLocator;

function fleetConfig(clouds: Record<string, unknown>): FleetConfig {
  return FleetConfig.parse({ version: 1, clouds, jurisdictions: { eu: { preset: 'eu-gdpr' } } });
}

/** A loopback stand-in for Google's STS token endpoint (Workload Identity Federation token exchange). */
async function startTokenServer(): Promise<string> {
  tokenServer = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      tokenRequests++;
      const body = JSON.stringify({
        access_token: GCS_TOKEN,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: 3600,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => tokenServer.listen(0, '127.0.0.1', resolve));
  const address = tokenServer.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}/v1/token`;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-buckets-'));
  const started = await Promise.all([
    startMoto(),
    startGcsFake({ faults: gcsFaults, log: new RequestLog() }),
    startGcsFake({ token: GCS_TOKEN }),
    startArmFake({ certDir: join(dir, 'tls') }),
    startAzurite(),
    startTokenServer(),
  ]);
  [moto, gcs, guardedGcs, arm, azurite] = started;
  const tokenUrl = started[5];
  proxy = await startAwsProxy({ upstream: moto.url });

  const awsCredentials = join(dir, 'aws-credentials');
  writeFileSync(
    awsCredentials,
    '[fleetward-test]\naws_access_key_id = testing\naws_secret_access_key = testing\n',
  );
  const azureToken = join(dir, 'azure-token');
  writeFileSync(azureToken, 'sandbox-token');
  const subjectToken = join(dir, 'subject-token');
  writeFileSync(subjectToken, 'placeholder-subject-token');
  externalAccountFile = join(dir, 'gcp-external-account.json');
  writeFileSync(
    externalAccountFile,
    JSON.stringify({
      type: 'external_account',
      audience: `//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/sandbox/providers/sandbox`,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: tokenUrl,
      credential_source: { file: subjectToken },
    }),
  );

  baseConfig = fleetConfig({
    aws: {
      endpoint: proxy.url,
      credentials: { profile: 'fleetward-test', file: awsCredentials },
      accounts: [
        { id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward-reader`, regions: ['eu-central-1'] },
      ],
    },
    gcp: { storageEndpoint: gcs.endpoint, insecure: true, maxAttempts: 3, projects: [{ id: PROJECT }] },
    azure: {
      endpoint: arm.endpoint,
      caFile: arm.caFile,
      credential: { type: 'access-token', file: azureToken },
      subscriptions: [{ id: SUBSCRIPTION }],
    },
  });
  locator = createBucketLocator(baseConfig, { logger: recording });

  writer = createBucketWriter({
    s3Endpoint: moto.url,
    gcsEndpoint: gcs.endpoint,
    azurite: {
      blobEndpoint: azurite.blobEndpoint,
      accountName: azurite.accountName,
      accountKey: azurite.accountKey,
    },
    arm,
  });
  await writer.ensureBuckets([...S3_SEEDS, ...GCS_SEEDS, ...AZURE_SEEDS]);
  guardedGcs.createBucket('fw-gke-backups-guarded', 'europe-west4');
});

afterAll(async () => {
  writer?.close();
  await Promise.allSettled([
    proxy?.stop(),
    gcs?.stop(),
    guardedGcs?.stop(),
    arm?.stop(),
    azurite?.stop(),
    new Promise<void>((resolve) => (tokenServer ? tokenServer.close(() => resolve()) : resolve())),
  ]);
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('bucket locator: S3', () => {
  it('locates buckets by GetBucketLocation with the role of the cluster account', async () => {
    proxy.log.clear();
    const located = [];
    for (const seed of S3_SEEDS) located.push(await locator.locate(ref(seed), EKS));

    expect(located).toEqual([
      { cloud: 'aws', region: 'eu-central-1' },
      { cloud: 'aws', region: 'af-south-1' },
      // S3 answers no LocationConstraint for us-east-1.
      { cloud: 'aws', region: 'us-east-1' },
    ]);
    const requests = proxy.requests();
    // One AssumeRole for the account, kept for the next buckets.
    expect(requests.filter((r) => r.operation === 'AssumeRole')).toHaveLength(1);
    const s3 = requests.filter((r) => r.service === 's3');
    expect(s3.map((r) => r.operation)).toEqual(S3_SEEDS.map(() => 'GetBucketLocation'));
    // Signed with the assumed role's keys (the proxy maps them to the account), not the base ones.
    expect(s3.every((r) => r.scope === ACCOUNT && r.accessKeyId !== 'testing')).toBe(true);
  });

  it('maps the legacy EU constraint to eu-west-1, on the wire and in the mapping', async () => {
    const remove = proxy.override('s3:GET /fw-legacy-eu/', () => ({
      status: 200,
      headers: { 'content-type': 'application/xml' },
      body: '<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">EU</LocationConstraint>',
    }));
    try {
      await expect(
        locator.locate({ provider: 'aws', bucket: 'fw-legacy-eu', config: { region: 'eu-west-1' } }, EKS),
      ).resolves.toEqual({ cloud: 'aws', region: 'eu-west-1' });
    } finally {
      remove();
    }
    expect(regionOfLocationConstraint('EU')).toBe('eu-west-1');
    expect(regionOfLocationConstraint('')).toBe('us-east-1');
    expect(regionOfLocationConstraint(null)).toBe('us-east-1');
    expect(regionOfLocationConstraint('ap-south-2')).toBe('ap-south-2');
  });

  it('uses the base credentials for a cluster outside the configured AWS accounts', async () => {
    proxy.log.clear();
    const located = await locator.locate(ref(S3_SEEDS[0]!, { region: 'eu-central-1' }), GKE);

    expect(located).toEqual({ cloud: 'aws', region: 'eu-central-1' });
    const requests = proxy.requests();
    expect(requests.some((r) => r.operation === 'AssumeRole')).toBe(false);
    expect(requests.filter((r) => r.service === 's3').map((r) => r.accessKeyId)).toEqual(['testing']);
  });

  it('accepts velero.io/aws and rejects an unknown bucket with a CloudApiError', async () => {
    await expect(
      locator.locate({ provider: 'velero.io/aws', bucket: S3_SEEDS[1]!.bucket, config: {} }, EKS),
    ).resolves.toEqual({ cloud: 'aws', region: 'af-south-1' });
    const error = await locator
      .locate({ provider: 'aws', bucket: 'fw-no-such-bucket', config: { region: 'eu-central-1' } }, EKS)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CloudApiError);
    expect(error).toMatchObject({
      cloud: 'aws',
      operation: 'GetBucketLocation',
      status: 404,
      retryable: false,
    });
    expect((error as Error).message).toMatch(/^s3 bucket fw-no-such-bucket: .*NoSuchBucket/);
  });

  it('refuses S3-compatible storage outside AWS (a BSL s3Url)', async () => {
    await expect(
      locator.locate(
        {
          provider: 'aws',
          bucket: 'minio-backups',
          config: { region: 'minio', s3Url: 'https://minio.example.com' },
        },
        EKS,
      ),
    ).rejects.toThrow(/storage outside aws s3/);
  });
});

describe('bucket locator: Cloud Storage', () => {
  it('answers the lower-cased location of a regional bucket without ever asking for a token', async () => {
    const before = tokenRequests;
    const previous = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    // Credentials are available to the auth library: insecure must still not use them.
    process.env.GOOGLE_APPLICATION_CREDENTIALS = externalAccountFile;
    try {
      const insecure = createBucketLocator(baseConfig, { logger: silent });
      await expect(insecure.locate(ref(GCS_SEEDS[0]!), GKE)).resolves.toEqual({
        cloud: 'gcp',
        region: 'europe-west1',
      });
    } finally {
      if (previous === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = previous;
    }

    expect(tokenRequests).toBe(before);
    const gets = gcs.requests({ operation: 'buckets.get', bucket: GCS_SEEDS[0]!.bucket });
    expect(gets.length).toBeGreaterThan(0);
    expect(gcs.requests().every((r) => !r.bearer)).toBe(true);
  });

  it.each([
    ['multi-region', 'fw-gke-backups-multi', /multi-region EU/],
    ['dual-region', 'fw-gke-backups-dual', /dual-region EUR4/],
  ])('refuses a %s bucket: its residency cannot be proven', async (_kind, bucket, pattern) => {
    const error = await locator.locate({ provider: 'gcp', bucket, config: {} }, GKE).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(FleetwardError);
    expect(error).not.toBeInstanceOf(CloudApiError);
    expect((error as Error).message).toMatch(pattern);
    expect((error as Error).message).toMatch(/cannot be proven/);
  });

  it('rejects an unknown bucket with a CloudApiError and retries a 503', async () => {
    const error = await locator
      .locate({ provider: 'velero.io/gcp', bucket: 'fw-no-such-bucket', config: {} }, GKE)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CloudApiError);
    expect(error).toMatchObject({ cloud: 'gcp', operation: 'buckets.get', status: 404, retryable: false });

    retried.length = 0;
    gcsFaults.add({
      cloud: 'gcp',
      operation: 'buckets.get',
      fault: { kind: 'error', status: 503 },
      times: 1,
    });
    await expect(locator.locate(ref(GCS_SEEDS[0]!), GKE)).resolves.toEqual({
      cloud: 'gcp',
      region: 'europe-west1',
    });
    expect(retried).toEqual([expect.objectContaining({ message: 'Call retried', operation: 'buckets.get' })]);
  });

  it('authenticates to a custom endpoint when not insecure (token from the credentials file)', async () => {
    const config = fleetConfig({
      gcp: {
        storageEndpoint: guardedGcs.endpoint,
        credentialsFile: externalAccountFile,
        projects: [{ id: PROJECT }],
      },
    });
    const before = tokenRequests;
    const located = await createBucketLocator(config, { logger: silent }).locate(
      { provider: 'gcp', bucket: 'fw-gke-backups-guarded', config: {} },
      GKE,
    );

    expect(located).toEqual({ cloud: 'gcp', region: 'europe-west4' });
    expect(tokenRequests).toBeGreaterThan(before);
    expect(guardedGcs.requests().map((r) => [r.operation, r.bearer, r.status])).toEqual([
      ['buckets.get', true, 200],
    ]);
  });

  it('refuses insecure without a loopback storage endpoint', async () => {
    const config = fleetConfig({ gcp: { insecure: true, projects: [{ id: PROJECT }] } });

    await expect(
      createBucketLocator(config, { logger: silent }).locate(ref(GCS_SEEDS[0]!), GKE),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('bucket locator: Azure storage accounts', () => {
  it("answers the storage account's location, in the cluster's subscription by default", async () => {
    await expect(locator.locate(ref(AZURE_SEEDS[0]!), AKS)).resolves.toEqual({
      cloud: 'azure',
      region: 'westeurope',
    });
    expect(arm.requests({ operation: 'storageAccounts.getProperties', scope: SUBSCRIPTION })).toHaveLength(1);
  });

  it('needs subscriptionId for a cluster outside Azure', async () => {
    await expect(locator.locate(ref(AZURE_SEEDS[0]!), GKE)).rejects.toThrow(/lacks subscriptionId/);
    await expect(
      locator.locate(ref(AZURE_SEEDS[0]!, { subscriptionId: SUBSCRIPTION }), GKE),
    ).resolves.toEqual({ cloud: 'azure', region: 'westeurope' });
    await expect(
      locator.locate({ provider: 'azure', bucket: 'velero', config: { resourceGroup: 'rg-backups' } }, AKS),
    ).rejects.toThrow(/lacks storageAccount/);
  });

  it('rejects an unknown storage account with a CloudApiError', async () => {
    const error = await locator
      .locate(ref(AZURE_SEEDS[0]!, { storageAccount: 'fwnosuchaccount' }), AKS)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CloudApiError);
    expect(error).toMatchObject({
      cloud: 'azure',
      operation: 'storageAccounts.getProperties',
      status: 404,
      retryable: false,
    });
    expect((error as Error).message).toMatch(/fwnosuchaccount.*404 ResourceNotFound/);
  });

  it('refuses a geo-redundant account that replicates to another region', async () => {
    const error = await locator.locate(ref(AZURE_SEEDS[1]!), AKS).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(FleetwardError);
    expect(error).not.toBeInstanceOf(CloudApiError);
    expect((error as Error).message).toMatch(/replicates from brazilsouth to southcentralus/);
  });
});

describe('bucket locator: providers', () => {
  it('maps Velero provider names to clouds', () => {
    expect(
      ['aws', 'velero.io/aws', 'GCP', 'velero.io/azure', 'velero.io/csi', 'openstack'].map(cloudOfProvider),
    ).toEqual(['aws', 'aws', 'gcp', 'azure', undefined, undefined]);
  });

  it('refuses an unsupported provider and a provider whose cloud is not configured', async () => {
    await expect(locator.locate({ provider: 'velero.io/csi', bucket: 'x', config: {} }, EKS)).rejects.toThrow(
      /provider "velero.io\/csi" is not supported/,
    );
    const gcpOnly = createBucketLocator(fleetConfig({ gcp: { projects: [{ id: PROJECT }] } }), {
      logger: silent,
    });
    await expect(gcpOnly.locate(ref(S3_SEEDS[0]!), EKS)).rejects.toThrow(/need clouds\.aws/);
  });

  it('rejects at once when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('run cancelled'));

    await expect(locator.locate(ref(S3_SEEDS[0]!), EKS, { signal: controller.signal })).rejects.toThrow(
      'run cancelled',
    );
  });
});

describe('bucket writer', () => {
  const LOCATIONS: [string, BackupLocation][] = [
    ['S3 (moto)', { ...S3_SEEDS[0]!, prefix: 'prod-eu' }],
    ['S3 in us-east-1 (moto)', S3_SEEDS[2]!],
    ['Cloud Storage (GCS fake)', { ...GCS_SEEDS[0]!, prefix: 'gke' }],
    ['Azure blob (Azurite)', AZURE_SEEDS[0]!],
  ];

  it.each(LOCATIONS)('writes Velero backup files to %s and reads them back', async (_name, location) => {
    const backup = `daily-${location.bucket}`;
    const files = veleroBackupFiles(backup, { includedNamespaces: ['*'] });
    await writer.writeBackupObjects(location, backup, files);
    const back = await writer.readBackupObjects(location, backup);

    expect(back.map((f) => f.key)).toEqual(files.map((f) => f.key).sort());
    for (const file of files) expect(back.find((f) => f.key === file.key)?.body.equals(file.body)).toBe(true);
  });

  it('lays objects out as Velero does, in the store the provider names', async () => {
    const gcsNames = gcs.objects(GCS_SEEDS[0]!.bucket).map((o) => o.name);
    const blobs = await blobClient(azurite).listBlobs('velero');

    expect(gcsNames).toContain(backupObjectKey('gke', `daily-${GCS_SEEDS[0]!.bucket}`, 'velero-backup.json'));
    expect(blobs).toContain('backups/daily-velero/velero-backup.json');
    expect(backupObjectKey('/prod-eu/', 'b1', 'b1.tar.gz')).toBe('prod-eu/backups/b1/b1.tar.gz');
  });
});
