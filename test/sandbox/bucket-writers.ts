/**
 * Plays Velero's part in the sandbox: stores a backup's files in the object store its
 * BackupStorageLocation names, the way Velero lays them out
 * (`[<prefix>/]backups/<backup>/<file>`), and creates the buckets the sandbox seeds.
 *
 * - `aws`: S3 on moto (path-style, the documented `testing` credentials), in the bucket's
 *   region (`config.region`); buckets are made with CreateBucket and a LocationConstraint
 *   (none for `us-east-1`, as S3 wants).
 * - `gcp`: the GCS fake through the real `@google-cloud/storage` client (no credentials;
 *   simple uploads, whose `md5Hash`/`crc32c` the client checks).
 * - `azure`: Azurite, one emulated account standing in for every storage account: the
 *   container is the BSL's bucket, the blob name the object key; the storage account the
 *   BSL names (`storageAccount`, `resourceGroup`, `subscriptionId`) is registered in the ARM
 *   fake with Azurite as its blob endpoint, so locating it answers its ARM location.
 */
import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  type CreateBucketCommandInput,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { cloudOfProvider } from '../../shared/clouds/buckets.ts';
import type { ArmFake, StorageAccountSpec } from './arm-fake.ts';
import { type BlobAccount, type BlobClient, blobClient } from './azurite.ts';
import { assertLoopback } from './net.ts';

/** Where a BSL stores backups (its provider, bucket, prefix and config, as in its spec). */
export interface BackupLocation {
  /** `aws`, `gcp`, `azure` (optionally `velero.io/`-prefixed). */
  provider: string;
  bucket: string;
  prefix?: string;
  config: Record<string, string>;
}

/** A bucket the sandbox creates. */
export interface BucketSeed extends BackupLocation {
  /**
   * Where it lives: the S3 region (default `config.region`), the GCS location
   * (`europe-west1`, or `EU` for a multi-region), the Azure location of the storage account.
   */
  location?: string;
  /** Azure: the subscription of the storage account when `config.subscriptionId` is left to the cluster's. */
  subscriptionId?: string;
  /** Azure: storage account settings besides its location (SKU, secondary region). */
  storageAccount?: Omit<StorageAccountSpec, 'location' | 'blobEndpoint'>;
}

/** One file of a backup: its name inside the backup's directory and its bytes. */
export interface BackupFile {
  key: string;
  body: Buffer;
}

export interface BucketWriterOptions {
  /** moto's URL (loopback). */
  s3Endpoint?: string;
  /** The GCS fake's endpoint (loopback). */
  gcsEndpoint?: string;
  /** Azurite's blob endpoint and account. */
  azurite?: BlobAccount;
  /** Where `ensureBuckets` registers Azure storage accounts. */
  arm?: Pick<ArmFake, 'setStorageAccount'>;
}

export interface BucketWriter {
  /** Creates buckets / containers (and Azure storage accounts in the ARM fake); existing ones are kept. */
  ensureBuckets(seeds: BucketSeed[]): Promise<void>;
  /** Stores the files of one backup under `[<prefix>/]backups/<backupName>/`. */
  writeBackupObjects(location: BackupLocation, backupName: string, files: BackupFile[]): Promise<void>;
  /** Reads back every file of one backup (key relative to the backup's directory), in key order. */
  readBackupObjects(location: BackupLocation, backupName: string): Promise<BackupFile[]>;
  /** Releases the S3 clients. */
  close(): void;
}

/** The object key Velero uses for one file of a backup. */
export function backupObjectKey(prefix: string | undefined, backupName: string, key: string): string {
  const dir = prefix ? `${prefix.replace(/^\/+|\/+$/g, '')}/` : '';
  return `${dir}backups/${backupName}/${key}`;
}

/** The files Velero writes for a backup (names as Velero 1.x writes them); bodies are small placeholders. */
export function veleroBackupFiles(backupName: string, spec: Record<string, unknown> = {}): BackupFile[] {
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  return [
    {
      key: 'velero-backup.json',
      body: json({
        kind: 'Backup',
        apiVersion: 'velero.io/v1',
        metadata: { name: backupName, namespace: 'velero' },
        spec,
        status: { phase: 'Completed', version: 1 },
      }),
    },
    {
      key: `${backupName}.tar.gz`,
      body: Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]),
    },
    {
      key: `${backupName}-logs.gz`,
      body: Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]),
    },
    { key: `${backupName}-resource-list.json.gz`, body: json({ 'v1/Namespace': [] }) },
    { key: `${backupName}-volumesnapshots.json.gz`, body: json([]) },
    { key: `${backupName}-podvolumebackups.json.gz`, body: json([]) },
    { key: `${backupName}-results.gz`, body: json({ errors: {}, warnings: {} }) },
  ];
}

function contentTypeOf(key: string): string {
  if (key.endsWith('.json')) return 'application/json';
  if (key.endsWith('.gz')) return 'application/gzip';
  return 'application/octet-stream';
}

/** The documented placeholder credentials of moto. */
const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export function createBucketWriter(options: BucketWriterOptions): BucketWriter {
  for (const url of [options.s3Endpoint, options.gcsEndpoint, options.azurite?.blobEndpoint]) {
    if (url !== undefined) assertLoopback(url);
  }
  const s3Clients = new Map<string, S3Client>();
  let storage: Storage | undefined;
  let blobs: BlobClient | undefined;

  const cloudOf = (location: BackupLocation) => {
    const cloud = cloudOfProvider(location.provider);
    if (!cloud) throw new Error(`unsupported velero provider "${location.provider}"`);
    return cloud;
  };
  const s3 = (region: string): S3Client => {
    if (!options.s3Endpoint) throw new Error('the bucket writer has no s3Endpoint');
    let client = s3Clients.get(region);
    if (!client) {
      client = new S3Client({
        endpoint: options.s3Endpoint,
        region,
        forcePathStyle: true,
        credentials: MOTO_CREDENTIALS,
      });
      s3Clients.set(region, client);
    }
    return client;
  };
  const gcs = (): Storage => {
    if (!options.gcsEndpoint) throw new Error('the bucket writer has no gcsEndpoint');
    storage ??= new Storage({
      apiEndpoint: options.gcsEndpoint,
      useAuthWithCustomEndpoint: false,
      projectId: 'fleetward-sandbox',
      retryOptions: { autoRetry: false },
    });
    return storage;
  };
  const azure = (): BlobClient => {
    if (!options.azurite) throw new Error('the bucket writer has no azurite account');
    blobs ??= blobClient(options.azurite);
    return blobs;
  };
  const s3Region = (location: BackupLocation & { location?: string }) =>
    location.location ?? location.config.region ?? 'us-east-1';

  async function ensureBucket(seed: BucketSeed): Promise<void> {
    switch (cloudOf(seed)) {
      case 'aws': {
        const region = s3Region(seed);
        const input: CreateBucketCommandInput = {
          Bucket: seed.bucket,
          ...(region === 'us-east-1'
            ? {}
            : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
        };
        try {
          await s3(region).send(new CreateBucketCommand(input));
        } catch (error) {
          if ((error as Error).name !== 'BucketAlreadyOwnedByYou') throw error;
        }
        return;
      }
      case 'gcp': {
        const location = seed.location ?? seed.config.region;
        if (!location) throw new Error(`gcs bucket ${seed.bucket}: give its location`);
        try {
          await gcs().createBucket(seed.bucket, { location });
        } catch (error) {
          if ((error as { code?: unknown }).code !== 409) throw error;
        }
        return;
      }
      case 'azure': {
        await azure().createContainer(seed.bucket);
        if (!options.arm) return;
        const { storageAccount, resourceGroup } = seed.config;
        const subscriptionId = seed.config.subscriptionId ?? seed.subscriptionId;
        if (!storageAccount || !resourceGroup || !subscriptionId || !seed.location) {
          throw new Error(
            `azure container ${seed.bucket}: give config.storageAccount, config.resourceGroup, a subscription and the location`,
          );
        }
        options.arm.setStorageAccount(subscriptionId, resourceGroup, storageAccount, {
          ...seed.storageAccount,
          location: seed.location,
          blobEndpoint: options.azurite!.blobEndpoint,
        });
        return;
      }
    }
  }

  return {
    async ensureBuckets(seeds) {
      for (const seed of seeds) await ensureBucket(seed);
    },

    async writeBackupObjects(location, backupName, files) {
      const cloud = cloudOf(location);
      for (const file of files) {
        const key = backupObjectKey(location.prefix, backupName, file.key);
        const contentType = contentTypeOf(file.key);
        if (cloud === 'aws') {
          await s3(s3Region(location)).send(
            new PutObjectCommand({
              Bucket: location.bucket,
              Key: key,
              Body: file.body,
              ContentType: contentType,
            }),
          );
        } else if (cloud === 'gcp') {
          await gcs().bucket(location.bucket).file(key).save(file.body, { resumable: false, contentType });
        } else {
          await azure().putBlob(location.bucket, key, file.body, contentType);
        }
      }
    },

    async readBackupObjects(location, backupName) {
      const cloud = cloudOf(location);
      const dir = backupObjectKey(location.prefix, backupName, '');
      const files: BackupFile[] = [];
      if (cloud === 'aws') {
        const client = s3(s3Region(location));
        let token: string | undefined;
        do {
          const page = await client.send(
            new ListObjectsV2Command({ Bucket: location.bucket, Prefix: dir, ContinuationToken: token }),
          );
          for (const object of page.Contents ?? []) {
            const out = await client.send(
              new GetObjectCommand({ Bucket: location.bucket, Key: object.Key! }),
            );
            files.push({
              key: object.Key!.slice(dir.length),
              body: Buffer.from(await out.Body!.transformToByteArray()),
            });
          }
          token = page.NextContinuationToken;
        } while (token);
      } else if (cloud === 'gcp') {
        const [objects] = await gcs().bucket(location.bucket).getFiles({ prefix: dir });
        for (const object of objects) {
          // The client checks the download against the crc32c / md5 the server reports.
          const [body] = await object.download();
          files.push({ key: object.name.slice(dir.length), body });
        }
      } else {
        for (const name of await azure().listBlobs(location.bucket, dir)) {
          const body = await azure().getBlob(location.bucket, name);
          if (body) files.push({ key: name.slice(dir.length), body });
        }
      }
      return files.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    close() {
      for (const client of s3Clients.values()) client.destroy();
      s3Clients.clear();
    },
  };
}
