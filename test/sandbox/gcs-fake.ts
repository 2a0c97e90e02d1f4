/**
 * A local Cloud Storage: an HTTP server on 127.0.0.1 that answers the few calls of the
 * Cloud Storage JSON API (v1) Fleetward and the sandbox make, in the wire shape of the API
 * reference, so the real `@google-cloud/storage` client works against it unchanged
 * (`apiEndpoint: fake.endpoint`).
 *
 * Implemented (operation names as in the reference; scope = bucket):
 * - `GET  /storage/v1/b/{bucket}` (`buckets.get`): the bucket resource (`location` in upper
 *   case as GCS reports it, `locationType` region / dual-region / multi-region)
 * - `POST /storage/v1/b?project=` (`buckets.insert`): creates a bucket from `{name, location, storageClass}`
 * - `POST /upload/storage/v1/b/{bucket}/o?uploadType=media|multipart&name=` (`objects.insert`):
 *   stores an object and answers its resource with `md5Hash` and `crc32c` (base64 of the
 *   big-endian CRC32C, Castagnoli), which the client checks against what it sent
 * - `GET  /storage/v1/b/{bucket}/o` (`objects.list`): `prefix`, `delimiter`, `maxResults`, `pageToken`
 * - `GET  /storage/v1/b/{bucket}/o/{object}` (`objects.get`): the object resource, or with
 *   `alt=media` its bytes with `x-goog-hash: crc32c=…,md5=…` and
 *   `x-goog-stored-content-encoding: identity`, which the client validates the download with
 * - `DELETE /storage/v1/b/{bucket}/o/{object}` (`objects.delete`)
 *
 * Immutability (evidence buckets), as GCS behaves:
 * - every write makes a new `generation` (int64 as a string, strictly increasing);
 *   `generation=` on `objects.get` (metadata or media) reads that generation, current or not
 * - a bucket with `versioning.enabled` keeps the replaced or deleted generation as a
 *   non-current version (with `timeDeleted`); `versions=true` on `objects.list` lists every
 *   version (by name, then generation ascending)
 * - `ifGenerationMatch` on `objects.insert` (`0`: only if no live object has the name) →
 *   412 `conditionNotMet`; `md5Hash` / `crc32c` sent in the upload metadata are checked
 *   against the bytes (400 `invalid` on a mismatch)
 * - a bucket created with `retentionDays` has a retention policy that is also enforced:
 *   deleting or overwriting an object younger than the period → 403 `retentionPolicyNotMet`;
 *   `locked` sets `isLocked` and versioning (the legacy `retentionPeriodSeconds` only reports
 *   a policy and enforces nothing)
 * - `alterObject` (a test hook, not an API) writes a new generation past every rule: tampering
 * - `deliver` (not an API either) is a Google service writing into the bucket, such as a Log
 *   Router sink (the logging fake's `deliverSinks`): it creates objects only, so it fails when
 *   the bucket does not exist or a live object has the name, and is not in the request log
 *
 * Errors use Google's JSON error body (`{"error":{"code","message","errors":[{"domain","reason","message"}]}}`).
 * Resumable uploads are not implemented (501); upload with `resumable: false`.
 * Without `token` any request is accepted, with or without credentials (like an emulator);
 * with it, requests need `Authorization: Bearer <token>`. Every request is recorded, with
 * whether it carried a bearer token, so tests can prove that an insecure client sent none.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  type Fault,
  FaultInjector,
  holdResponse,
  type RequestInfo,
  RequestLog,
  sendTruncatedJson,
} from './faults.ts';
import { deniedMessage } from './request-log.ts';

/** Where a bucket keeps its data, as GCS names the kinds. */
export type GcsLocationType = 'region' | 'dual-region' | 'multi-region';

export interface GcsBucketOptions {
  /** Default: from the location (`EU`/`US`/`ASIA` multi-region, `EUR4`/`NAM4`/… dual-region, else region). */
  locationType?: GcsLocationType;
  storageClass?: string;
  /** A retention policy of this many seconds (reported only, not enforced). */
  retentionPeriodSeconds?: number;
  /** A retention policy of this many days, enforced on delete and overwrite like GCS. */
  retentionDays?: number;
  /** Locks the retention policy (`isLocked: true`) and turns versioning on. */
  locked?: boolean;
  /** Object versioning (`versioning.enabled`); default: on when `locked`. */
  versioning?: boolean;
  /** Regions of a configurable dual-region (`customPlacementConfig.dataLocations`). */
  dataLocations?: string[];
  /** ISO 8601 creation time (default: now). */
  createdAt?: string;
}

/** A bucket resource exactly as the JSON API serialises it (int64 fields are strings). */
export interface GcsBucketResource {
  kind: 'storage#bucket';
  selfLink: string;
  id: string;
  name: string;
  projectNumber: string;
  generation: string;
  metageneration: string;
  location: string;
  storageClass: string;
  etag: string;
  timeCreated: string;
  updated: string;
  softDeletePolicy: { retentionDurationSeconds: string; effectiveTime: string };
  iamConfiguration: {
    bucketPolicyOnly: { enabled: boolean; lockedTime?: string };
    uniformBucketLevelAccess: { enabled: boolean; lockedTime?: string };
    publicAccessPrevention: string;
  };
  locationType: GcsLocationType;
  rpo?: string;
  customPlacementConfig?: { dataLocations: string[] };
  retentionPolicy?: { retentionPeriod: string; effectiveTime: string; isLocked?: boolean };
  versioning?: { enabled: boolean };
}

/** An object resource exactly as the JSON API serialises it. */
export interface GcsObjectResource {
  kind: 'storage#object';
  id: string;
  selfLink: string;
  mediaLink: string;
  name: string;
  bucket: string;
  generation: string;
  metageneration: string;
  contentType: string;
  storageClass: string;
  size: string;
  md5Hash: string;
  crc32c: string;
  etag: string;
  timeCreated: string;
  updated: string;
  timeStorageClassUpdated: string;
  timeFinalized: string;
  metadata?: Record<string, string>;
  /** Set on a non-current version: when it stopped being the live one. */
  timeDeleted?: string;
}

/** A stored object: its resource and its bytes. */
export interface GcsStoredObject {
  name: string;
  body: Buffer;
  resource: GcsObjectResource;
}

/** One request as the fake saw it. */
export interface GcsRequestInfo extends RequestInfo {
  cloud: 'gcp';
  method: string;
  /** Path and query string as received. */
  url: string;
  bucket?: string;
  object?: string;
  /** Whether the request carried `Authorization: Bearer …` (the token itself is never kept). */
  bearer: boolean;
}

export interface GcsFakeOptions {
  faults?: FaultInjector;
  log?: RequestLog;
  /** When set, the only bearer token accepted; requests without it get 401. */
  token?: string;
  /** The project number buckets report (default `123456789012`, the reference's placeholder). */
  projectNumber?: string;
}

export interface GcsFake {
  /** `http://127.0.0.1:<port>`: the `apiEndpoint` (and `clouds.gcp.storageEndpoint`) to configure. */
  endpoint: string;
  log: RequestLog;
  /** Creates (or replaces) a bucket; `location` is stored upper case, as GCS reports it. */
  createBucket(name: string, location: string, options?: GcsBucketOptions): GcsBucketResource;
  /** The live objects of a bucket in name order (empty for an unknown bucket). */
  objects(bucket: string): GcsStoredObject[];
  /** Every version of the objects of a bucket (live and non-current), by name then generation. */
  versions(bucket: string, name?: string): GcsStoredObject[];
  /**
   * Test hook, tampering: writes `bytes` as a NEW generation of `name`, past retention and
   * preconditions (the replaced generation is kept when versioning is on).
   */
  alterObject(bucket: string, name: string, bytes: Uint8Array): GcsStoredObject;
  /**
   * A write by a Google service (a Log Router sink's writer), not through the JSON API: creates
   * `name` as a new object; throws when the bucket does not exist or a live object has the name.
   */
  deliver(bucket: string, name: string, body: Uint8Array, contentType: string): GcsStoredObject;
  /** Requests of this fake, optionally of one operation and/or bucket. */
  requests(filter?: { operation?: string; bucket?: string }): GcsRequestInfo[];
  stop(): Promise<void>;
}

// --- hashes ---

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC32C (Castagnoli) of `data`, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC32C_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The `crc32c` field of an object resource: base64 of the big-endian CRC32C. */
export function crc32cBase64(data: Uint8Array): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32c(data));
  return out.toString('base64');
}

/** The `md5Hash` field of an object resource: base64 of the MD5 digest. */
export function md5Base64(data: Uint8Array): string {
  return createHash('md5').update(data).digest('base64');
}

/** A protobuf varint, for etags in GCS's format (base64 of `{1: generation, 2: metageneration}`). */
function varint(value: bigint): number[] {
  const bytes: number[] = [];
  let v = value;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return bytes;
}

function etagOf(generation: bigint | undefined, metageneration: bigint): string {
  const bytes =
    generation === undefined
      ? [0x08, ...varint(metageneration)]
      : [0x08, ...varint(generation), 0x10, ...varint(metageneration)];
  return Buffer.from(bytes).toString('base64');
}

const lockedTime = (created: string) => new Date(Date.parse(created) + 90 * 86_400_000).toISOString();

// --- locations ---

const MULTI_REGIONS = new Set(['ASIA', 'EU', 'US']);
const DUAL_REGIONS = new Set(['ASIA1', 'EUR4', 'EUR5', 'EUR7', 'EUR8', 'NAM4']);

function locationTypeOf(location: string, dataLocations: string[] | undefined): GcsLocationType {
  if (dataLocations?.length) return 'dual-region';
  if (MULTI_REGIONS.has(location)) return 'multi-region';
  if (DUAL_REGIONS.has(location)) return 'dual-region';
  return 'region';
}

// --- errors ---

const REASONS: Record<number, { reason: string; message: string }> = {
  400: { reason: 'invalid', message: 'Invalid argument.' },
  401: { reason: 'authError', message: 'Invalid Credentials' },
  403: { reason: 'forbidden', message: 'Access denied.' },
  404: { reason: 'notFound', message: 'Not Found' },
  409: { reason: 'conflict', message: 'Conflict' },
  412: {
    reason: 'conditionNotMet',
    message: 'At least one of the pre-conditions you specified did not hold.',
  },
  429: {
    reason: 'rateLimitExceeded',
    message: 'The project exceeded the rate limit for creating and deleting buckets.',
  },
  500: { reason: 'backendError', message: 'Backend Error' },
  501: { reason: 'notImplemented', message: 'Not Implemented' },
  503: { reason: 'backendError', message: 'Service Unavailable' },
};

interface Bucket {
  resource: GcsBucketResource;
  /** Live objects by name. */
  objects: Map<string, GcsStoredObject>;
  /** Non-current versions (versioned buckets only). */
  noncurrent: GcsStoredObject[];
  /** Whether the retention policy blocks deletes and overwrites (buckets made with `retentionDays`). */
  enforceRetention: boolean;
}

const byNameThenGeneration = (x: GcsStoredObject, y: GcsStoredObject): number =>
  x.name < y.name
    ? -1
    : x.name > y.name
      ? 1
      : Number(BigInt(x.resource.generation) - BigInt(y.resource.generation));

/** What the log needs to know about one request, filled in while it is handled. */
interface RequestContext {
  operation: string;
  bucket?: string;
  object?: string;
  fault?: Fault['kind'] | undefined;
}

/** Splits a `multipart/related` body into its parts (headers and bytes). */
function parseMultipart(body: Buffer, boundary: string): { headers: Record<string, string>; body: Buffer }[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const next = Buffer.from(`\r\n--${boundary}`);
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new Error('no multipart boundary in the body');
  pos += delimiter.length;
  while (body.subarray(pos, pos + 2).toString() !== '--') {
    if (body.subarray(pos, pos + 2).toString() === '\r\n') pos += 2;
    const end = body.indexOf(next, pos);
    if (end < 0) throw new Error('unterminated multipart part');
    const part = body.subarray(pos, end);
    const split = part.indexOf('\r\n\r\n');
    const head = split < 0 ? '' : part.subarray(0, split).toString('utf8');
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: split < 0 ? part : part.subarray(split + 4) });
    pos = end + next.length;
  }
  return parts;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Starts the fake on a free loopback port. */
export async function startGcsFake(options: GcsFakeOptions = {}): Promise<GcsFake> {
  const faults = options.faults ?? new FaultInjector();
  const log = options.log ?? new RequestLog();
  const projectNumber = options.projectNumber ?? '123456789012';
  const buckets = new Map<string, Bucket>();
  const entries: GcsRequestInfo[] = [];
  const held = new Set<ServerResponse>();
  const stopping = new AbortController();
  let endpoint = '';
  let lastGeneration = 0n;

  const nextGeneration = (): bigint => {
    // Microseconds since the epoch, strictly increasing, like GCS generations.
    const now = BigInt(Date.now()) * 1000n;
    lastGeneration = now > lastGeneration ? now : lastGeneration + 1n;
    return lastGeneration;
  };

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(text),
      'x-guploader-uploadid': `fake-${nextGeneration().toString(36)}`,
      ...headers,
    });
    res.end(text);
  };

  const sendError = (
    res: ServerResponse,
    status: number,
    message?: string,
    reason?: string,
    headers: Record<string, string> = {},
  ) => {
    const known = REASONS[status] ?? { reason: 'backendError', message: 'Backend Error' };
    const text = message ?? known.message;
    sendJson(
      res,
      status,
      {
        error: {
          code: status,
          message: text,
          errors: [{ message: text, domain: 'global', reason: reason ?? known.reason }],
        },
      },
      headers,
    );
  };

  const bucketResource = (name: string, location: string, bucketOptions: GcsBucketOptions = {}) => {
    const created = bucketOptions.createdAt ?? new Date().toISOString();
    const upper = location.toUpperCase();
    const dataLocations = bucketOptions.dataLocations?.map((l) => l.toUpperCase());
    const locationType = bucketOptions.locationType ?? locationTypeOf(upper, dataLocations);
    const resource: GcsBucketResource = {
      kind: 'storage#bucket',
      selfLink: `${endpoint}/storage/v1/b/${name}`,
      id: name,
      name,
      projectNumber,
      generation: nextGeneration().toString(),
      metageneration: '1',
      location: upper,
      storageClass: bucketOptions.storageClass ?? 'STANDARD',
      etag: etagOf(undefined, 1n),
      timeCreated: created,
      updated: created,
      softDeletePolicy: { retentionDurationSeconds: '604800', effectiveTime: created },
      // Uniform bucket-level access locks 90 days after it is enabled.
      iamConfiguration: {
        bucketPolicyOnly: { enabled: true, lockedTime: lockedTime(created) },
        uniformBucketLevelAccess: { enabled: true, lockedTime: lockedTime(created) },
        publicAccessPrevention: 'enforced',
      },
      locationType,
      ...(locationType === 'region' ? {} : { rpo: 'DEFAULT' }),
      ...(dataLocations?.length ? { customPlacementConfig: { dataLocations } } : {}),
    };
    const seconds =
      bucketOptions.retentionDays === undefined
        ? bucketOptions.retentionPeriodSeconds
        : bucketOptions.retentionDays * 86_400;
    if (seconds !== undefined) {
      resource.retentionPolicy = {
        retentionPeriod: String(seconds),
        effectiveTime: created,
        ...(bucketOptions.locked === undefined ? {} : { isLocked: bucketOptions.locked }),
      };
    }
    if (bucketOptions.versioning ?? bucketOptions.locked) resource.versioning = { enabled: true };
    return resource;
  };

  const createBucket = (name: string, location: string, bucketOptions: GcsBucketOptions = {}) => {
    const resource = bucketResource(name, location, bucketOptions);
    const previous = buckets.get(name);
    buckets.set(name, {
      resource,
      objects: previous?.objects ?? new Map(),
      noncurrent: previous?.noncurrent ?? [],
      enforceRetention: bucketOptions.retentionDays !== undefined,
    });
    return resource;
  };

  /** When an object's retention ends, or `undefined` when the bucket enforces none. */
  const retainedUntil = (bucket: Bucket, object: GcsStoredObject): Date | undefined => {
    const period = bucket.resource.retentionPolicy?.retentionPeriod;
    if (!bucket.enforceRetention || period === undefined) return undefined;
    const until = new Date(Date.parse(object.resource.timeCreated) + Number(period) * 1000);
    return until.getTime() > Date.now() ? until : undefined;
  };

  /** Takes the live object of `name` out of the live set, keeping it as non-current when versioning is on. */
  const retire = (bucket: Bucket, name: string) => {
    const live = bucket.objects.get(name);
    if (!live) return;
    bucket.objects.delete(name);
    if (bucket.resource.versioning?.enabled) {
      live.resource.timeDeleted = new Date().toISOString();
      bucket.noncurrent.push(live);
    }
  };

  /** The object of `name` at `generation` (current or not), else the live one. */
  const findObject = (bucket: Bucket, name: string, generation: string | null) => {
    const live = bucket.objects.get(name);
    if (generation === null) return live;
    if (live?.resource.generation === generation) return live;
    return bucket.noncurrent.find((o) => o.name === name && o.resource.generation === generation);
  };

  const storeObject = (bucket: Bucket, name: string, body: Buffer, meta: Record<string, unknown>) => {
    const generation = nextGeneration();
    const now = new Date().toISOString();
    const bucketName = bucket.resource.name;
    const encoded = encodeURIComponent(name);
    const custom = meta.metadata;
    const resource: GcsObjectResource = {
      kind: 'storage#object',
      id: `${bucketName}/${name}/${generation}`,
      selfLink: `${endpoint}/storage/v1/b/${bucketName}/o/${encoded}`,
      mediaLink: `${endpoint}/download/storage/v1/b/${bucketName}/o/${encoded}?generation=${generation}&alt=media`,
      name,
      bucket: bucketName,
      generation: generation.toString(),
      metageneration: '1',
      contentType: typeof meta.contentType === 'string' ? meta.contentType : 'application/octet-stream',
      storageClass: bucket.resource.storageClass,
      size: String(body.length),
      md5Hash: md5Base64(body),
      crc32c: crc32cBase64(body),
      etag: etagOf(generation, 1n),
      timeCreated: now,
      updated: now,
      timeStorageClassUpdated: now,
      timeFinalized: now,
      ...(custom && typeof custom === 'object'
        ? {
            metadata: Object.fromEntries(
              Object.entries(custom as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
            ),
          }
        : {}),
    };
    const stored: GcsStoredObject = { name, body, resource };
    retire(bucket, name);
    bucket.objects.set(name, stored);
    return stored;
  };

  /** Applies a fault; returns true when it answered (or holds) the request. */
  const applyFault = (res: ServerResponse, fault: Fault | undefined, body: () => unknown): boolean => {
    if (!fault) return false;
    switch (fault.kind) {
      case 'throttle':
        sendError(
          res,
          429,
          undefined,
          undefined,
          fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) },
        );
        return true;
      case 'error':
        sendError(res, fault.status);
        return true;
      case 'deny':
        sendError(res, 403, fault.message, 'forbidden');
        return true;
      case 'timeout':
        holdResponse(res, held);
        return true;
      case 'malformed':
        sendTruncatedJson(res, body(), 'application/json; charset=UTF-8');
        return true;
    }
  };

  const takeFault = async (info: RequestContext): Promise<Fault | undefined> => {
    await faults.delay(stopping.signal);
    const fault = faults.take({
      cloud: 'gcp',
      operation: info.operation,
      ...(info.bucket ? { scope: info.bucket } : {}),
    });
    info.fault = fault?.kind;
    return fault?.kind === 'deny'
      ? { ...fault, message: deniedMessage({ cloud: 'gcp', operation: info.operation }) }
      : fault;
  };

  const noBucket = (res: ServerResponse) => sendError(res, 404, 'The specified bucket does not exist.');

  const handle = async (req: IncomingMessage, res: ServerResponse, info: RequestContext) => {
    const url = new URL(req.url ?? '/', endpoint);
    // Split before decoding: an object name's `/` arrives as %2F.
    const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const [a, b, c, bucketName, d, objectName, ...rest] = segments;
    const upload = a === 'upload' && b === 'storage' && c === 'v1';
    const api = a === 'storage' && b === 'v1';

    if (api && c === 'b' && segments.length === 3 && method === 'POST') {
      info.operation = 'buckets.insert';
    } else if (api && c === 'b' && segments.length === 4 && bucketName && method === 'GET') {
      Object.assign(info, { operation: 'buckets.get', bucket: bucketName });
    } else if (api && c === 'b' && bucketName && d === 'o' && segments.length === 5 && method === 'GET') {
      Object.assign(info, { operation: 'objects.list', bucket: bucketName });
    } else if (api && c === 'b' && bucketName && d === 'o' && objectName && rest.length === 0) {
      if (method === 'GET') Object.assign(info, { operation: 'objects.get', bucket: bucketName });
      else if (method === 'DELETE') Object.assign(info, { operation: 'objects.delete', bucket: bucketName });
      info.object = objectName;
    } else if (upload && segments[3] === 'b' && segments[4] && segments[5] === 'o' && method === 'POST') {
      Object.assign(info, { operation: 'objects.insert', bucket: segments[4] });
    }

    if (options.token !== undefined) {
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      if (bearer !== options.token) {
        sendError(res, 401, 'Invalid Credentials', 'authError');
        return;
      }
    }

    const body = await readBody(req);
    switch (info.operation) {
      case 'buckets.insert': {
        let input: { name?: unknown; location?: unknown; storageClass?: unknown };
        try {
          input = JSON.parse(body.toString('utf8')) as typeof input;
        } catch {
          sendError(res, 400, 'Invalid JSON payload received.', 'parseError');
          return;
        }
        if (typeof input.name !== 'string' || !/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(input.name)) {
          sendError(res, 400, 'Invalid bucket name', 'invalid');
          return;
        }
        info.bucket = input.name;
        if (applyFault(res, await takeFault(info), () => ({}))) return;
        if (buckets.has(input.name)) {
          sendError(
            res,
            409,
            'Your previous request to create the named bucket succeeded and you already own it.',
            'conflict',
          );
          return;
        }
        const location = typeof input.location === 'string' ? input.location : 'US';
        sendJson(
          res,
          200,
          createBucket(input.name, location, {
            ...(typeof input.storageClass === 'string' ? { storageClass: input.storageClass } : {}),
          }),
        );
        return;
      }
      case 'buckets.get': {
        const found = buckets.get(bucketName!);
        if (applyFault(res, await takeFault(info), () => found?.resource ?? {})) return;
        if (!found) return noBucket(res);
        sendJson(res, 200, found.resource);
        return;
      }
      case 'objects.list': {
        const found = buckets.get(bucketName!);
        const prefix = url.searchParams.get('prefix') ?? '';
        const delimiter = url.searchParams.get('delimiter') ?? '';
        const maxResults = Math.max(
          1,
          Math.min(1000, Number(url.searchParams.get('maxResults') ?? 1000) || 1000),
        );
        const pageToken = url.searchParams.get('pageToken');
        const versions = url.searchParams.get('versions') === 'true';
        // The page token is the last (name, generation) consumed.
        const [afterName, afterGeneration] = pageToken
          ? Buffer.from(pageToken, 'base64url').toString('utf8').split('\n')
          : [];
        const consumed = (o: GcsStoredObject) =>
          afterName !== undefined &&
          (o.name < afterName ||
            (o.name === afterName && BigInt(o.resource.generation) <= BigInt(afterGeneration ?? '0')));
        const listing = () => {
          const items: GcsObjectResource[] = [];
          const prefixes = new Set<string>();
          let nextPageToken: string | undefined;
          const all = [...(found?.objects.values() ?? []), ...(versions ? (found?.noncurrent ?? []) : [])];
          all.sort(byNameThenGeneration);
          // Objects folded into a prefix count as consumed.
          let last: GcsStoredObject | undefined;
          for (const object of all) {
            const name = object.name;
            if (!name.startsWith(prefix) || consumed(object)) continue;
            const restOfName = name.slice(prefix.length);
            const cut = delimiter ? restOfName.indexOf(delimiter) : -1;
            const folded = cut >= 0 ? prefix + restOfName.slice(0, cut + delimiter.length) : undefined;
            if (folded !== undefined && prefixes.has(folded)) {
              last = object;
              continue;
            }
            if (items.length + prefixes.size >= maxResults) {
              if (last !== undefined) {
                nextPageToken = Buffer.from(`${last.name}\n${last.resource.generation}`, 'utf8').toString(
                  'base64url',
                );
              }
              break;
            }
            if (folded !== undefined) prefixes.add(folded);
            else items.push(object.resource);
            last = object;
          }
          return {
            kind: 'storage#objects',
            ...(nextPageToken ? { nextPageToken } : {}),
            ...(prefixes.size > 0 ? { prefixes: [...prefixes] } : {}),
            ...(items.length > 0 ? { items } : {}),
          };
        };
        if (applyFault(res, await takeFault(info), listing)) return;
        if (!found) return noBucket(res);
        sendJson(res, 200, listing());
        return;
      }
      case 'objects.get':
      case 'objects.delete': {
        const found = buckets.get(bucketName!);
        const generation = url.searchParams.get('generation');
        const object = found && findObject(found, objectName!, generation);
        if (applyFault(res, await takeFault(info), () => object?.resource ?? {})) return;
        if (!found) return noBucket(res);
        if (!object) {
          sendError(res, 404, `No such object: ${bucketName}/${objectName}`);
          return;
        }
        if (info.operation === 'objects.delete') {
          const until = retainedUntil(found, object);
          if (until) {
            sendError(
              res,
              403,
              `Object '${bucketName}/${objectName}' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten until ${until.toISOString()}`,
              'retentionPolicyNotMet',
            );
            return;
          }
          if (generation !== null && found.objects.get(object.name) !== object) {
            found.noncurrent = found.noncurrent.filter((o) => o !== object);
          } else if (generation !== null) {
            found.objects.delete(object.name);
          } else {
            retire(found, object.name);
          }
          res.writeHead(204);
          res.end();
          return;
        }
        if (url.searchParams.get('alt') !== 'media') {
          sendJson(res, 200, object.resource);
          return;
        }
        const r = object.resource;
        res.writeHead(200, {
          'content-type': r.contentType,
          'content-length': object.body.length,
          'x-goog-hash': `crc32c=${r.crc32c},md5=${r.md5Hash}`,
          'x-goog-stored-content-encoding': 'identity',
          'x-goog-stored-content-length': r.size,
          'x-goog-generation': r.generation,
          'x-goog-metageneration': r.metageneration,
          'x-goog-storage-class': r.storageClass,
          etag: r.etag,
          'last-modified': new Date(r.updated).toUTCString(),
        });
        res.end(object.body);
        return;
      }
      case 'objects.insert': {
        const found = buckets.get(info.bucket!);
        const uploadType = url.searchParams.get('uploadType');
        let name = url.searchParams.get('name') ?? undefined;
        let meta: Record<string, unknown> = {};
        let data = body;
        if (uploadType === 'resumable') {
          sendError(res, 501, 'Resumable uploads are not implemented by the fake; use resumable: false.');
          return;
        }
        if (uploadType === 'multipart') {
          const boundary = /boundary="?([^";]+)"?/i.exec(req.headers['content-type'] ?? '')?.[1];
          try {
            if (!boundary) throw new Error('no boundary');
            const parts = parseMultipart(body, boundary);
            if (parts.length !== 2) throw new Error(`expected 2 parts, got ${parts.length}`);
            meta = JSON.parse(parts[0]!.body.toString('utf8')) as Record<string, unknown>;
            data = parts[1]!.body;
            if (typeof meta.contentType !== 'string' && parts[1]!.headers['content-type'])
              meta.contentType = parts[1]!.headers['content-type'];
          } catch (error) {
            sendError(res, 400, `Invalid multipart request: ${(error as Error).message}`, 'invalid');
            return;
          }
          if (typeof meta.name === 'string') name ??= meta.name;
        } else if (uploadType === 'media') {
          const type = req.headers['content-type'];
          if (type) meta.contentType = type;
        } else {
          sendError(res, 400, `Invalid upload type: ${uploadType}`, 'invalid');
          return;
        }
        info.object = name;
        if (applyFault(res, await takeFault(info), () => ({ kind: 'storage#object', name }))) return;
        if (!found) return noBucket(res);
        if (!name) {
          sendError(res, 400, 'Required parameter: name', 'required');
          return;
        }
        const live = found.objects.get(name);
        const ifGenerationMatch = url.searchParams.get('ifGenerationMatch');
        if (ifGenerationMatch !== null && (live?.resource.generation ?? '0') !== ifGenerationMatch) {
          sendError(res, 412);
          return;
        }
        if (typeof meta.md5Hash === 'string' && meta.md5Hash !== md5Base64(data)) {
          sendError(
            res,
            400,
            `Provided MD5 hash "${meta.md5Hash}" doesn't match calculated MD5 hash "${md5Base64(data)}".`,
            'invalid',
          );
          return;
        }
        if (typeof meta.crc32c === 'string' && meta.crc32c !== crc32cBase64(data)) {
          sendError(
            res,
            400,
            `Provided CRC32C "${meta.crc32c}" doesn't match calculated CRC32C "${crc32cBase64(data)}".`,
            'invalid',
          );
          return;
        }
        const until = live && retainedUntil(found, live);
        if (until) {
          sendError(
            res,
            403,
            `Object '${found.resource.name}/${name}' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten until ${until.toISOString()}`,
            'retentionPolicyNotMet',
          );
          return;
        }
        sendJson(res, 200, storeObject(found, name, data, meta).resource);
        return;
      }
      default:
        sendError(res, 404, `The fake does not serve ${method} ${url.pathname}.`);
    }
  };

  const server = createServer((req, res) => {
    const at = Date.now();
    const t0 = performance.now();
    const info: RequestContext = { operation: 'unknown' };
    const bearer = /^Bearer\s+\S+$/i.test(req.headers.authorization ?? '');
    res.once('close', () => {
      const entry: GcsRequestInfo = {
        cloud: 'gcp',
        operation: info.operation,
        ...(info.bucket === undefined ? {} : { scope: info.bucket, bucket: info.bucket }),
        ...(info.object === undefined ? {} : { object: info.object }),
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        bearer,
        at,
        durationMs: performance.now() - t0,
        ...(res.headersSent ? { status: res.statusCode } : {}),
        ...(info.fault === undefined ? {} : { fault: info.fault }),
      };
      entries.push(entry);
      log.record(entry);
    });
    handle(req, res, info).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, String(error));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the GCS fake did not get a port');
  endpoint = `http://127.0.0.1:${address.port}`;

  return {
    endpoint,
    log,
    createBucket,
    objects(bucket) {
      const found = buckets.get(bucket);
      if (!found) return [];
      return [...found.objects.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    },
    versions(bucket, name) {
      const found = buckets.get(bucket);
      if (!found) return [];
      return [...found.objects.values(), ...found.noncurrent]
        .filter((o) => name === undefined || o.name === name)
        .sort(byNameThenGeneration);
    },
    alterObject(bucket, name, bytes) {
      const found = buckets.get(bucket);
      if (!found) throw new Error(`gcs fake: no bucket ${bucket}`);
      const live = found.objects.get(name);
      return storeObject(found, name, Buffer.from(bytes), {
        contentType: live?.resource.contentType,
        ...(live?.resource.metadata ? { metadata: live.resource.metadata } : {}),
      });
    },
    deliver(bucket, name, body, contentType) {
      const found = buckets.get(bucket);
      if (!found) throw new Error(`gcs fake: the bucket ${bucket} does not exist`);
      if (found.objects.has(name)) throw new Error(`gcs fake: ${bucket}/${name} exists`);
      return storeObject(found, name, Buffer.from(body), { contentType });
    },
    requests(filter = {}) {
      return entries.filter(
        (e) =>
          (filter.operation === undefined || e.operation === filter.operation) &&
          (filter.bucket === undefined || e.bucket === filter.bucket),
      );
    },
    async stop() {
      stopping.abort();
      for (const res of held) res.destroy();
      held.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
