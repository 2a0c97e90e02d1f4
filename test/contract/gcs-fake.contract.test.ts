/**
 * The GCS fake answers what the Cloud Storage JSON API answers, read through the real
 * `@google-cloud/storage` client: bucket and object resources, Google's error body, and the
 * `md5Hash` / `crc32c` the client checks uploads and downloads against.
 *
 * `test/fixtures/gcp/gcs-bucket.json` holds, in the shape of the Cloud Storage JSON API
 * reference (v1):
 * - `bucket`: a Buckets resource (`buckets.get`) of a regional bucket with uniform
 *   bucket-level access, public access prevention, the default soft-delete policy and a
 *   retention policy, int64 fields as strings, the etag of metageneration 1 (`CAE=`);
 * - `object`: an Objects resource as `objects.insert` answers it, whose content is the
 *   9 bytes `123456789`, so its `md5Hash` and `crc32c` are independent test vectors (the
 *   CRC-32C check value `0xE3069283` from RFC 3720, big-endian, base64);
 * - `notFound`: the JSON error body of a missing bucket.
 * Values are placeholders: `example-velero-backups`, project number `123456789012`.
 */
import { readFileSync } from 'node:fs';
import { CRC32C, type File, type GetFilesOptions, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultInjector, RequestLog } from '../sandbox/faults.ts';
import { crc32c, crc32cBase64, type GcsFake, md5Base64, startGcsFake } from '../sandbox/gcs-fake.ts';

interface Fixture {
  bucket: Record<string, unknown>;
  object: Record<string, unknown>;
  notFound: unknown;
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/gcp/gcs-bucket.json', import.meta.url), 'utf8'),
) as Fixture;
const BUCKET = fixture.bucket.name as string;
const OBJECT = fixture.object.name as string;

/** The structure of a JSON value: keys and value types, recursively (arrays by their first element). */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return [value.length > 0 ? shape(value[0]) : 'empty'];
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, shape(v)]),
    );
  }
  return value === null ? 'null' : typeof value;
}

/** Decodes an etag of GCS's format (base64 protobuf varints `{1: generation, 2: metageneration}`). */
function decodeEtag(etag: string): bigint[] {
  const bytes = Buffer.from(etag, 'base64');
  const values: bigint[] = [];
  let i = 0;
  while (i < bytes.length) {
    i++; // field tag
    let value = 0n;
    let shift = 0n;
    let byte: number;
    do {
      byte = bytes[i++]!;
      value |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
    } while (byte & 0x80);
    values.push(value);
  }
  return values;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const faults = new FaultInjector();
const log = new RequestLog();
let fake: GcsFake;
let storage: Storage;

beforeAll(async () => {
  fake = await startGcsFake({ faults, log });
  fake.createBucket(BUCKET, 'europe-west3', { retentionPeriodSeconds: 2_592_000 });
  fake.createBucket('example-multi-region', 'EU');
  fake.createBucket('example-dual-region', 'eur4');
  fake.createBucket('example-configurable-dual', 'EU', { dataLocations: ['europe-west1', 'europe-west4'] });
  storage = new Storage({
    apiEndpoint: fake.endpoint,
    useAuthWithCustomEndpoint: false,
    retryOptions: { autoRetry: false },
  });
});

afterAll(async () => {
  await fake?.stop();
});

describe('gcs fake: hashes', () => {
  it('computes CRC32C (Castagnoli) like the client library and the RFC 3720 check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    for (const size of [0, 1, 7, 64, 1000, 65_537]) {
      const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff));
      const theirs = new CRC32C();
      theirs.update(data);
      expect(crc32cBase64(data)).toBe(theirs.toString());
    }
    expect(md5Base64(Buffer.from('123456789'))).toBe(fixture.object.md5Hash);
  });
});

describe('gcs fake: buckets', () => {
  it('answers buckets.get with a bucket resource of the documented shape', async () => {
    const [metadata] = await storage.bucket(BUCKET).getMetadata();

    expect(shape(metadata)).toEqual(shape(fixture.bucket));
    expect(metadata).toMatchObject({
      kind: 'storage#bucket',
      id: BUCKET,
      name: BUCKET,
      location: 'EUROPE-WEST3',
      locationType: 'region',
      storageClass: 'STANDARD',
      metageneration: '1',
      etag: fixture.bucket.etag,
      projectNumber: fixture.bucket.projectNumber,
      retentionPolicy: { retentionPeriod: '2592000' },
    });
    expect(metadata.timeCreated).toMatch(ISO);
    expect(metadata.updated).toMatch(ISO);
    expect(metadata.selfLink).toBe(`${fake.endpoint}/storage/v1/b/${BUCKET}`);
    expect(metadata.rpo).toBeUndefined();
  });

  it('reports multi-regions and dual-regions as GCS does', async () => {
    const [multi] = await storage.bucket('example-multi-region').getMetadata();
    const [dual] = await storage.bucket('example-dual-region').getMetadata();
    const [configurable] = await storage.bucket('example-configurable-dual').getMetadata();

    expect(multi).toMatchObject({ location: 'EU', locationType: 'multi-region', rpo: 'DEFAULT' });
    expect(dual).toMatchObject({ location: 'EUR4', locationType: 'dual-region', rpo: 'DEFAULT' });
    expect(configurable).toMatchObject({
      location: 'EU',
      locationType: 'dual-region',
      customPlacementConfig: { dataLocations: ['EUROPE-WEST1', 'EUROPE-WEST4'] },
    });
    expect(multi.retentionPolicy).toBeUndefined();
  });

  it('creates buckets through buckets.insert and refuses a second one of the same name', async () => {
    const [bucket] = await storage.createBucket('example-created', { location: 'asia-south1' });
    const [metadata] = await bucket.getMetadata();

    expect(metadata).toMatchObject({
      name: 'example-created',
      location: 'ASIA-SOUTH1',
      locationType: 'region',
    });
    await expect(storage.createBucket('example-created', { location: 'asia-south1' })).rejects.toMatchObject({
      code: 409,
    });
  });

  it("answers a missing bucket with Google's JSON error body", async () => {
    const response = await fetch(`${fake.endpoint}/storage/v1/b/no-such-bucket`);

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual(fixture.notFound);
    await expect(storage.bucket('no-such-bucket').getMetadata()).rejects.toMatchObject({
      code: 404,
      message: 'The specified bucket does not exist.',
    });
  });
});

describe('gcs fake: objects', () => {
  const body = Buffer.from('123456789');

  it('stores a multipart upload and answers an object resource of the documented shape', async () => {
    const file = storage.bucket(BUCKET).file(OBJECT);
    // The client compares the answer's crc32c with what it sent; a wrong hash would fail the save.
    await file.save(body, { resumable: false, contentType: 'application/octet-stream' });
    const resource = file.metadata;

    expect(shape(resource)).toEqual(shape(fixture.object));
    expect(resource).toMatchObject({
      kind: 'storage#object',
      name: OBJECT,
      bucket: BUCKET,
      size: '9',
      md5Hash: fixture.object.md5Hash,
      crc32c: fixture.object.crc32c,
      metageneration: '1',
      contentType: 'application/octet-stream',
      storageClass: 'STANDARD',
    });
    expect(resource.id).toBe(`${BUCKET}/${OBJECT}/${resource.generation}`);
    expect(resource.mediaLink).toContain(
      `/o/${encodeURIComponent(OBJECT)}?generation=${resource.generation}`,
    );
    expect(decodeEtag(resource.etag!)).toEqual([BigInt(resource.generation!), 1n]);
    expect(decodeEtag(fixture.object.etag as string)).toEqual([
      BigInt(fixture.object.generation as string),
      1n,
    ]);
    expect(fake.objects(BUCKET).map((o) => o.name)).toEqual([OBJECT]);
  });

  it('stores a media upload', async () => {
    const response = await fetch(
      `${fake.endpoint}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent('raw/one.json')}`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' },
    );
    const resource = (await response.json()) as Record<string, unknown>;

    expect(response.status).toBe(200);
    expect(resource).toMatchObject({ name: 'raw/one.json', contentType: 'application/json', size: '7' });
    expect(resource.crc32c).toBe(crc32cBase64(Buffer.from('{"a":1}')));
  });

  it('serves downloads the client validates, and a corrupted one fails validation', async () => {
    const [downloaded] = await storage.bucket(BUCKET).file(OBJECT).download();

    expect(downloaded.equals(body)).toBe(true);

    const stored = fake.objects(BUCKET).find((o) => o.name === OBJECT)!;
    const original = Buffer.from(stored.body);
    stored.body[0] = 0x30; // "023456789": the hashes the fake reports no longer match
    try {
      await expect(storage.bucket(BUCKET).file(OBJECT).download()).rejects.toMatchObject({
        code: 'CONTENT_DOWNLOAD_MISMATCH',
      });
    } finally {
      original.copy(stored.body);
    }
  });

  it('lists objects with prefix, delimiter and pages', async () => {
    for (const name of [
      'backups/b1/a.json',
      'backups/b1/b.json',
      'backups/b2/a.json',
      'restores/r1/x.json',
    ]) {
      await storage.bucket(BUCKET).file(name).save(Buffer.from(name), { resumable: false });
    }
    const [all] = await storage.bucket(BUCKET).getFiles({ prefix: 'backups/' });
    const [page, next] = await storage
      .bucket(BUCKET)
      .getFiles({ prefix: 'backups/', maxResults: 2, autoPaginate: false });
    const [, , top] = await storage
      .bucket(BUCKET)
      .getFiles({ delimiter: '/', autoPaginate: false, prefix: 'backups/' });

    expect(all.map((f) => f.name)).toEqual([
      'backups/b1/a.json',
      'backups/b1/b.json',
      'backups/b2/a.json',
      OBJECT,
    ]);
    expect(page.map((f) => f.name)).toEqual(['backups/b1/a.json', 'backups/b1/b.json']);
    expect(next).toMatchObject({ pageToken: expect.any(String) });
    const paged: string[] = [];
    let query: GetFilesOptions | null = { prefix: 'backups/', maxResults: 2, autoPaginate: false };
    while (query) {
      const [files, nextQuery]: [File[], GetFilesOptions | null, unknown] = await storage
        .bucket(BUCKET)
        .getFiles(query);
      paged.push(...files.map((f) => f.name));
      query = nextQuery;
    }
    expect(paged).toEqual(all.map((f) => f.name));
    expect((top as { prefixes?: string[] }).prefixes).toEqual([
      'backups/b1/',
      'backups/b2/',
      'backups/example-backup/',
    ]);
  });

  it('answers a missing object with 404 and deletes objects', async () => {
    await expect(storage.bucket(BUCKET).file('no/such/object').getMetadata()).rejects.toMatchObject({
      code: 404,
      message: `No such object: ${BUCKET}/no/such/object`,
    });
    await storage.bucket(BUCKET).file('raw/one.json').delete();

    expect(fake.objects(BUCKET).some((o) => o.name === 'raw/one.json')).toBe(false);
  });
});

describe('gcs fake: requests, faults and auth', () => {
  it('records every request with its operation, bucket and whether it carried a token', () => {
    const operations = new Set(fake.requests({ bucket: BUCKET }).map((r) => r.operation));

    expect([...operations].sort()).toEqual([
      'buckets.get',
      'objects.delete',
      'objects.get',
      'objects.insert',
      'objects.list',
    ]);
    expect(fake.requests().every((r) => r.cloud === 'gcp' && r.bearer === false)).toBe(true);
    expect(log.count('gcp', 'buckets.get')).toBe(fake.requests({ operation: 'buckets.get' }).length);
    expect(fake.requests({ operation: 'buckets.get', bucket: BUCKET })[0]).toMatchObject({
      scope: BUCKET,
      status: 200,
      method: 'GET',
    });
  });

  it('injects throttling and errors in the JSON error format', async () => {
    faults.add({
      cloud: 'gcp',
      operation: 'buckets.get',
      scope: BUCKET,
      fault: { kind: 'throttle' },
      times: 1,
    });
    faults.add({
      cloud: 'gcp',
      operation: 'buckets.get',
      scope: BUCKET,
      fault: { kind: 'error', status: 503 },
      times: 1,
    });

    await expect(storage.bucket(BUCKET).getMetadata()).rejects.toMatchObject({
      code: 429,
      errors: [expect.objectContaining({ reason: 'rateLimitExceeded' })],
    });
    await expect(storage.bucket(BUCKET).getMetadata()).rejects.toMatchObject({ code: 503 });
    await expect(storage.bucket(BUCKET).getMetadata()).resolves.toBeDefined();
    expect(fake.requests({ operation: 'buckets.get' }).map((r) => r.fault)).toContain('throttle');
  });

  it('requires the bearer token when started with one', async () => {
    const guarded = await startGcsFake({ token: 'sandbox-gcs-token' });
    try {
      guarded.createBucket('example-guarded', 'europe-west1');
      const anonymous = new Storage({
        apiEndpoint: guarded.endpoint,
        useAuthWithCustomEndpoint: false,
        retryOptions: { autoRetry: false },
      });
      await expect(anonymous.bucket('example-guarded').getMetadata()).rejects.toMatchObject({ code: 401 });
      const ok = await fetch(`${guarded.endpoint}/storage/v1/b/example-guarded`, {
        headers: { authorization: 'Bearer sandbox-gcs-token' },
      });

      expect(ok.status).toBe(200);
      expect(guarded.requests().map((r) => r.bearer)).toEqual([false, true]);
    } finally {
      await guarded.stop();
    }
  });
});
