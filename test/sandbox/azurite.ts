/**
 * Azurite (Microsoft's Azure Storage emulator, a real third-party server) as one process:
 * its blob service only, started with the current Node binary on its own entry point (not
 * the `azurite-blob` shell shim), so the PID we hold is Azurite's and `stop()` ends exactly
 * it. Loopback only, in-memory persistence, telemetry off, any API version accepted.
 *
 * `@azure/storage-blob` is not a dependency, so {@link blobClient} speaks the Blob REST API
 * with Shared Key authorisation itself (create container, put / get / list blobs): enough
 * for the sandbox to store Velero's backup files and for tests to read them back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { assertLoopback } from './net.ts';

/** The emulator's well-known account, as Microsoft documents it for Azurite (public, not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
/** The documented, public development key of {@link AZURITE_ACCOUNT}. */
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  /** `http://127.0.0.1:<port>/devstoreaccount1`. */
  blobEndpoint: string;
  accountName: string;
  accountKey: string;
  pid: number;
  /** Stops the process (SIGTERM, then SIGKILL after 3 s) and removes the working directory it created. */
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** Working directory of the process (Azurite keeps nothing there in memory mode); default: a fresh temporary one. */
  dir?: string;
  /** Megabytes of blob content Azurite may hold (default 256). */
  memoryLimitMb?: number;
  /** How long to wait for it to listen (default 30 s). */
  timeoutMs?: number;
}

function azuriteBlobMain(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'fleetward-azurite-'));
  const env = { ...process.env };
  // A custom account list would replace the documented development account.
  delete env.AZURITE_ACCOUNTS;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      azuriteBlobMain(),
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--inMemoryPersistence',
      '--extentMemoryLimit',
      String(options.memoryLimitMb ?? 256),
      '--disableTelemetry',
      '--skipApiVersionCheck',
      '--silent',
    ],
    { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  const cleanup = () => {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`azurite did not listen within ${options.timeoutMs ?? 30_000} ms: ${output}`)),
        options.timeoutMs ?? 30_000,
      );
      const onData = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-4000);
        const m = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`azurite exited with ${code}: ${output}`));
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  } catch (error) {
    await kill();
    cleanup();
    throw error;
  }
  // Keep draining its output so the pipe never fills.
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    blobEndpoint: `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`,
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_ACCOUNT_KEY,
    pid: child.pid!,
    async stop() {
      await kill();
      cleanup();
    },
  };
}

// --- a Blob REST client with Shared Key ---

/** Where and as whom to reach a blob service. */
export interface BlobAccount {
  /** `http://127.0.0.1:<port>/<account>` (path-style, as the emulator serves it). */
  blobEndpoint: string;
  accountName: string;
  /** Base64 account key. */
  accountKey: string;
}

export interface BlobClient {
  /** Creates a container; one that exists already is fine. */
  createContainer(container: string): Promise<void>;
  putBlob(container: string, name: string, body: Buffer, contentType?: string): Promise<void>;
  /**
   * Appends `body` to an append blob, creating it (empty, `If-None-Match: *`) first when it does
   * not exist: what Azure Monitor does with each hour's diagnostic log blob.
   */
  appendBlob(container: string, name: string, body: Buffer, contentType?: string): Promise<void>;
  /** The blob's bytes, or `undefined` when it does not exist. */
  getBlob(container: string, name: string): Promise<Buffer | undefined>;
  /** Blob names of a container (optionally under a prefix), in name order. */
  listBlobs(container: string, prefix?: string): Promise<string[]>;
}

const API_VERSION = '2021-12-02';

/** The Shared Key `Authorization` header of a request (Blob service, version 2015-02-21 and later). */
export function sharedKeyAuthorization(
  account: Pick<BlobAccount, 'accountName' | 'accountKey'>,
  method: string,
  url: URL,
  headers: Record<string, string>,
): string {
  const header = (name: string) => {
    const value = Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1] ?? '';
    return name === 'content-length' && value === '0' ? '' : value;
  };
  const canonicalHeaders = Object.entries(headers)
    .map(([k, v]) => [k.toLowerCase(), v.trim()] as const)
    .filter(([k]) => k.startsWith('x-ms-'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}:${v}\n`)
    .join('');
  const params = new Map<string, string[]>();
  for (const [k, v] of url.searchParams)
    params.set(k.toLowerCase(), [...(params.get(k.toLowerCase()) ?? []), v]);
  const canonicalResource =
    `/${account.accountName}${url.pathname}` +
    [...params.keys()]
      .sort()
      .map((k) => `\n${k}:${params.get(k)!.join(',')}`)
      .join('');
  const stringToSign = [
    method.toUpperCase(),
    header('content-encoding'),
    header('content-language'),
    header('content-length'),
    header('content-md5'),
    header('content-type'),
    header('date'),
    header('if-modified-since'),
    header('if-match'),
    header('if-none-match'),
    header('if-unmodified-since'),
    header('range'),
  ].join('\n');
  const signature = createHmac('sha256', Buffer.from(account.accountKey, 'base64'))
    .update(`${stringToSign}\n${canonicalHeaders}${canonicalResource}`, 'utf8')
    .digest('base64');
  return `SharedKey ${account.accountName}:${signature}`;
}

function blobPath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** A Shared Key client of a (loopback) blob service. */
export function blobClient(account: BlobAccount): BlobClient {
  assertLoopback(account.blobEndpoint);
  const base = account.blobEndpoint.replace(/\/+$/, '');

  const send = async (
    method: string,
    path: string,
    query: Record<string, string>,
    body?: Buffer,
    extra: Record<string, string> = {},
  ): Promise<Response> => {
    const url = new URL(`${base}${path}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const headers: Record<string, string> = {
      'x-ms-date': new Date().toUTCString(),
      'x-ms-version': API_VERSION,
      ...(body ? { 'content-length': String(body.length) } : {}),
      ...extra,
    };
    headers.authorization = sharedKeyAuthorization(account, method, url, headers);
    return fetch(url, { method, headers, ...(body ? { body: new Uint8Array(body) } : {}) });
  };

  const fail = async (what: string, response: Response): Promise<never> => {
    const text = await response.text();
    const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? response.headers.get('x-ms-error-code') ?? '';
    throw new Error(`azure blob ${what} failed: ${response.status} ${code}`.trim());
  };

  return {
    async createContainer(container) {
      const response = await send('PUT', `/${container}`, { restype: 'container' });
      if (response.status === 409 && response.headers.get('x-ms-error-code') === 'ContainerAlreadyExists') {
        await response.arrayBuffer();
        return;
      }
      if (!response.ok) await fail(`create container ${container}`, response);
      await response.arrayBuffer();
    },
    async putBlob(container, name, body, contentType = 'application/octet-stream') {
      const response = await send('PUT', `/${container}/${blobPath(name)}`, {}, body, {
        'content-type': contentType,
        'x-ms-blob-type': 'BlockBlob',
      });
      if (!response.ok) await fail(`put ${container}/${name}`, response);
      await response.arrayBuffer();
    },
    async appendBlob(container, name, body, contentType = 'application/json') {
      const created = await send('PUT', `/${container}/${blobPath(name)}`, {}, undefined, {
        'content-length': '0',
        'content-type': contentType,
        'x-ms-blob-type': 'AppendBlob',
        'if-none-match': '*',
      });
      if (!created.ok && created.status !== 409)
        await fail(`create append blob ${container}/${name}`, created);
      await created.arrayBuffer();
      const response = await send('PUT', `/${container}/${blobPath(name)}`, { comp: 'appendblock' }, body);
      if (!response.ok) await fail(`append to ${container}/${name}`, response);
      await response.arrayBuffer();
    },
    async getBlob(container, name) {
      const response = await send('GET', `/${container}/${blobPath(name)}`, {});
      if (response.status === 404) {
        await response.arrayBuffer();
        return undefined;
      }
      if (!response.ok) await fail(`get ${container}/${name}`, response);
      return Buffer.from(await response.arrayBuffer());
    },
    async listBlobs(container, prefix) {
      const names: string[] = [];
      let marker = '';
      do {
        const response = await send('GET', `/${container}`, {
          restype: 'container',
          comp: 'list',
          ...(prefix ? { prefix } : {}),
          ...(marker ? { marker } : {}),
        });
        if (!response.ok) await fail(`list ${container}`, response);
        const xml = await response.text();
        for (const m of xml.matchAll(/<Blob>\s*<Name>([^<]*)<\/Name>/g)) names.push(decodeXml(m[1]!));
        marker = /<NextMarker>([^<]*)<\/NextMarker>/.exec(xml)?.[1] ?? '';
      } while (marker);
      return names.sort();
    },
  };
}

function decodeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#\d+);/g, (_, entity: string) => {
    switch (entity) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCharCode(Number(entity.slice(1)));
    }
  });
}
