/**
 * Azurite behind a proxy that enforces immutability: an HTTP server on 127.0.0.1 that
 * forwards the Blob REST API to Azurite unchanged (Shared Key signatures do not cover the
 * host, so clients sign for the proxy and Azurite accepts them) and adds what Azurite lacks:
 *
 * - Version bookkeeping, for every container: each successful Put Blob gets an
 *   `x-ms-version-id` (a timestamp id like the service's) and its bytes are kept here;
 *   `GET` with `versionid` and List Blobs with `include=versions` are answered from this record
 *   (only single-shot Put Blob uploads are versioned; block lists are not).
 * - Locked containers (`lockContainer(container, days)`): container GetProperties answers
 *   `x-ms-immutable-storage-with-versioning-enabled: true` and `x-ms-has-immutability-policy:
 *   true` (the service's headers), plus the sandbox convention `x-ms-immutability-policy-mode:
 *   locked` and `x-ms-immutability-policy-until-date` (now + days), which the service sends for
 *   blobs, not containers. Fleetward does not rely on these headers: it checks immutability
 *   through ARM (`blobContainers.get`, served by the ARM fake). Overwrites and deletes of existing blobs answer 409
 *   `BlobImmutableDueToPolicy` (a conditional create with `If-None-Match: *` answers 409
 *   `BlobAlreadyExists`, as the service does first).
 * - `alterBlob` writes a new version behind the lock (as a privileged writer or a later
 *   version would), keeping the old one.
 * - Every request is recorded.
 */
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { type Azurite, blobClient } from './azurite.ts';
import type { FaultInjector, RequestInfo, RequestLog } from './faults.ts';

export interface ProxiedRequest {
  method: string;
  path: string;
  query: string;
  status: number;
}

export interface BlobImmutabilityProxy {
  /** `http://127.0.0.1:<port>/devstoreaccount1`. */
  endpoint: string;
  /**
   * Marks a container as version-level immutable with a locked policy of `days`;
   * `appendWrites`: the policy allows protected append writes (Append Block on an existing
   * append blob), as Azure Monitor's `insights-logs-*` containers need.
   */
  lockContainer(container: string, days: number, options?: { appendWrites?: boolean }): void;
  /** Writes a new version of an existing blob past the lock; returns its version id. */
  alterBlob(container: string, name: string, bytes: Uint8Array): Promise<string>;
  /** Every request the proxy saw. */
  requests: ProxiedRequest[];
  stop(): Promise<void>;
}

interface Version {
  versionId: string;
  blobType: 'BlockBlob' | 'AppendBlob';
  bytes: Buffer;
  contentType: string;
  lastModified: Date;
  etag: string;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${xmlEscape(message)}\nRequestId:${randomUUID()}\nTime:${new Date().toISOString()}</Message></Error>`;
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-ms-error-code': code,
    'x-ms-request-id': randomUUID(),
    'x-ms-version': '2025-01-05',
  });
  res.end(body);
}

/** The Blob service operation of a request (`PutBlob`, `GetBlob`, `ListBlobs`...), as the REST API names it. */
export function blobOperation(method: string, name: string, q: URLSearchParams): string {
  const comp = q.get('comp');
  if (name === '') {
    if (comp === 'list') return 'ListBlobs';
    if (q.get('restype') === 'container' && !comp)
      return (
        ({ PUT: 'CreateContainer', DELETE: 'DeleteContainer' } as Record<string, string>)[method] ??
        'GetContainerProperties'
      );
    return `${method} ${comp ?? 'account'}`;
  }
  if (method === 'PUT')
    return comp === 'block'
      ? 'PutBlock'
      : comp === 'blocklist'
        ? 'PutBlockList'
        : comp
          ? `SetBlob:${comp}`
          : 'PutBlob';
  if (method === 'HEAD') return 'GetBlobProperties';
  if (method === 'DELETE') return 'DeleteBlob';
  return 'GetBlob';
}

export async function startBlobImmutabilityProxy(options: {
  azurite: Azurite;
  /** Logs every request as `{ cloud: 'azure', service: 'blob', operation }` (test/sandbox/request-log.ts). */
  log?: RequestLog;
  /** Only `deny` rules apply here: 403 `AuthorizationPermissionMismatch`, as Storage answers a missing data action. */
  faults?: FaultInjector;
}): Promise<BlobImmutabilityProxy> {
  const { azurite } = options;
  const target = new URL(azurite.blobEndpoint);
  const account = azurite.accountName;
  const locked = new Map<string, number>();
  const appendable = new Set<string>();
  const versions = new Map<string, Version[]>();
  const requests: ProxiedRequest[] = [];
  let last = 0;
  const direct = blobClient(azurite);

  /** A unique, increasing id in the service's format (`2025-01-01T00:00:00.1234567Z`). */
  const newVersionId = (): string => {
    const now = Math.max(Date.now() * 10_000, last + 1);
    last = now;
    const ms = Math.floor(now / 10_000);
    const ticks = String(now % 10_000_000).padStart(7, '0');
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${ticks}Z`);
  };
  const record = (container: string, name: string, v: Omit<Version, 'versionId'>): string => {
    const k = `${container}/${name}`;
    const versionId = newVersionId();
    versions.set(k, [...(versions.get(k) ?? []), { ...v, versionId }]);
    return versionId;
  };

  const forward = (
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: target.host };
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const h: Record<string, string | string[]> = {};
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h[k] = v;
            resolve({ status: res.statusCode ?? 502, headers: h, body: Buffer.concat(chunks) });
          });
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });

  const listVersions = (res: ServerResponse, container: string, url: URL): void => {
    const prefix = url.searchParams.get('prefix') ?? '';
    const blobs = [...versions.entries()]
      .filter(([k]) => k.startsWith(`${container}/${prefix}`))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([k, list]) => {
        const name = k.slice(container.length + 1);
        return list.map(
          (v, i) =>
            `<Blob><Name>${xmlEscape(name)}</Name><VersionId>${v.versionId}</VersionId>${i === list.length - 1 ? '<IsCurrentVersion>true</IsCurrentVersion>' : ''}<Properties><Creation-Time>${v.lastModified.toUTCString()}</Creation-Time><Last-Modified>${v.lastModified.toUTCString()}</Last-Modified><Etag>${v.etag}</Etag><Content-Length>${v.bytes.length}</Content-Length><Content-Type>${xmlEscape(v.contentType)}</Content-Type><BlobType>${v.blobType}</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties></Blob>`,
        );
      });
    const body = `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://127.0.0.1/${account}" ContainerName="${xmlEscape(container)}">${prefix ? `<Prefix>${xmlEscape(prefix)}</Prefix>` : ''}<Blobs>${blobs.join('')}</Blobs><NextMarker /></EnumerationResults>`;
    res.writeHead(200, {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(body),
      'x-ms-request-id': randomUUID(),
      'x-ms-version': '2025-01-05',
    });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const segments = url.pathname.split('/').slice(2); // after /<account>
    const container = segments[0] ? decodeURIComponent(segments[0]) : '';
    const name = segments.slice(1).map(decodeURIComponent).join('/');
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    const isLocked = locked.has(container);
    const key = `${container}/${name}`;
    const info: RequestInfo = {
      cloud: 'azure',
      service: 'blob',
      operation: blobOperation(method, name, q),
      at: Date.now(),
    };
    res.once('finish', () => options.log?.record({ ...info, status: res.statusCode }));
    if (options.faults?.denies(info)) {
      info.fault = 'deny';
      sendError(
        res,
        403,
        'AuthorizationPermissionMismatch',
        'This request is not authorized to perform this operation using this permission.',
      );
      return;
    }

    if (
      name === '' &&
      q.get('restype') === 'container' &&
      q.get('comp') === 'list' &&
      /versions/i.test(q.get('include') ?? '')
    ) {
      listVersions(res, container, url);
      return;
    }
    if (name !== '' && method === 'GET' && q.get('versionid')) {
      const v = versions.get(key)?.find((x) => x.versionId === q.get('versionid'));
      if (!v) {
        sendError(res, 404, 'BlobNotFound', 'The specified blob does not exist.');
        return;
      }
      res.writeHead(200, {
        'content-type': v.contentType,
        'content-length': v.bytes.length,
        'last-modified': v.lastModified.toUTCString(),
        etag: v.etag,
        'x-ms-blob-type': v.blobType,
        'x-ms-version-id': v.versionId,
        'x-ms-request-id': randomUUID(),
        'x-ms-version': '2025-01-05',
        'accept-ranges': 'bytes',
      });
      res.end(v.bytes);
      return;
    }
    const isBlobWrite = name !== '' && method === 'PUT' && !q.get('comp');
    // Append Block grows an existing append blob: allowed on a locked container only when its
    // policy allows protected append writes; it makes no new version (as the service does).
    if (name !== '' && method === 'PUT' && q.get('comp') === 'appendblock') {
      if (isLocked && !appendable.has(container)) {
        sendError(
          res,
          409,
          'BlobImmutableDueToPolicy',
          'This operation is not permitted as the blob is immutable due to a policy.',
        );
        return;
      }
      const answer = await forward(req, body);
      const current = versions.get(key)?.at(-1);
      if (answer.status === 201 && current) {
        current.bytes = Buffer.concat([current.bytes, body]);
        current.lastModified = new Date();
      }
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
      return;
    }
    if (isLocked && name !== '' && (isBlobWrite || method === 'DELETE') && versions.has(key)) {
      if (isBlobWrite && req.headers['if-none-match'] === '*') {
        sendError(res, 409, 'BlobAlreadyExists', 'The specified blob already exists.');
      } else {
        sendError(
          res,
          409,
          'BlobImmutableDueToPolicy',
          'This operation is not permitted as the blob is immutable due to a policy.',
        );
      }
      return;
    }
    const answer = await forward(req, body);
    if (isBlobWrite && answer.status === 201) {
      answer.headers['x-ms-version-id'] = record(container, name, {
        blobType: req.headers['x-ms-blob-type'] === 'AppendBlob' ? 'AppendBlob' : 'BlockBlob',
        bytes: body,
        contentType:
          (req.headers['x-ms-blob-content-type'] as string | undefined) ?? 'application/octet-stream',
        lastModified: new Date(),
        etag: String(answer.headers.etag ?? `"0x${Date.now().toString(16).toUpperCase()}"`),
      });
    }
    if (
      isLocked &&
      name === '' &&
      q.get('restype') === 'container' &&
      !q.get('comp') &&
      answer.status === 200
    ) {
      answer.headers['x-ms-immutable-storage-with-versioning-enabled'] = 'true';
      answer.headers['x-ms-has-immutability-policy'] = 'true';
      answer.headers['x-ms-immutability-policy-mode'] = 'locked';
      answer.headers['x-ms-immutability-policy-until-date'] = new Date(
        Date.now() + locked.get(container)! * 86_400_000 + 3_600_000,
      ).toUTCString();
    }
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  };

  const server = createServer((req, res) => {
    res.once('finish', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      requests.push({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.search,
        status: res.statusCode,
      });
    });
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'InternalError', String(error));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('blob proxy has no port');

  return {
    endpoint: `http://127.0.0.1:${address.port}/${account}`,
    requests,
    lockContainer(container, days, lockOptions = {}) {
      locked.set(container, days);
      if (lockOptions.appendWrites) appendable.add(container);
      else appendable.delete(container);
    },
    async alterBlob(container, name, bytes) {
      const k = `${container}/${name}`;
      const current = versions.get(k);
      if (!current) throw new Error(`no blob ${k} to alter`);
      const buffer = Buffer.from(bytes);
      await direct.putBlob(container, name, buffer, current[current.length - 1]!.contentType);
      return record(container, name, {
        blobType: 'BlockBlob',
        bytes: buffer,
        contentType: current[current.length - 1]!.contentType,
        lastModified: new Date(),
        etag: `"0x${Date.now().toString(16).toUpperCase()}"`,
      });
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
