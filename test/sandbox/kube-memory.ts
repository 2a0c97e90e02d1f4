/**
 * A minimal Kubernetes API responder for fleets too large for one fake API server per cluster
 * (10,000-100,000 clusters): one HTTPS loopback server (the client sends bearer tokens over
 * https only) serving every cluster under
 * `/clusters/<key>/…`, each with Velero installed, answering only what a backup pass asks —
 * API discovery, the preflight reads (Velero CRDs, the `velero` Deployment, the
 * BackupStorageLocations), the namespace list, and Backup create / read (409 AlreadyExists
 * for a name that exists).
 *
 * Every answer but the Backups is the same for every cluster, so it is not written here: it is
 * taken, on first ask, from one real `startKubeFake` cluster with the Velero simulator
 * installed (the template) and then served from memory. Backups are kept per cluster, as the
 * API server stores them (one object per name), so a test can count them. No Velero
 * controller runs: a Backup stays as created. `kube-memory.contract.test.ts` holds the
 * responder to the full fake's answers for the calls a backup pass makes.
 *
 * `latencyMs` delays every answer (a remote API server); `onRequest` lets a test see every
 * request (to kill a worker at a chosen call).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KubeFake, kubeStatus, kubeStatusWithDetails, startKubeFake } from './kube-fake.ts';
import { localCert } from './tls.ts';
import type { VeleroLocation } from './velero-sim.ts';

export const KUBE_MEMORY_TOKEN = 'sandbox-token';

/** The storage location every cluster's Velero has (an S3 bucket in eu-central-1). */
export const KUBE_MEMORY_LOCATION: VeleroLocation = {
  name: 'default',
  provider: 'aws',
  bucket: 'fleetward-bench-backups',
  config: { region: 'eu-central-1' },
};

interface StoredBackup {
  object: Record<string, unknown> & { metadata: Record<string, unknown> };
}

export interface KubeMemory {
  /** `https://127.0.0.1:<port>`; a cluster's server is `${url}/clusters/<key>`. */
  url: string;
  /** PEM of the CA that signed the server certificate. */
  ca: string;
  server(key: string): string;
  /** Backup objects stored in a cluster (by name, as the API server keeps them). */
  backups(key: string): string[];
  /** Clusters with at least one Backup, and how many each has. */
  backupCounts(): Map<string, number>;
  /** Requests answered. */
  requests(): number;
  /** Milliseconds added before every answer; may be changed between passes. */
  latencyMs: number;
  stop(): Promise<void>;
}

export interface KubeMemoryOptions {
  latencyMs?: number;
  /** Sees every request before it is answered (cluster key, method, path). */
  onRequest?: (key: string, method: string, path: string) => void;
}

const BACKUPS = /^\/apis\/velero\.io\/v1\/namespaces\/([^/]+)\/backups(?:\/([^/?]+))?$/;

export async function startKubeMemory(options: KubeMemoryOptions = {}): Promise<KubeMemory> {
  const certDir = mkdtempSync(join(tmpdir(), 'fleetward-kube-memory-'));
  const cert = localCert(certDir);
  const template: KubeFake = await startKubeFake({
    name: 'template',
    certDir,
    token: KUBE_MEMORY_TOKEN,
    velero: { locations: [KUBE_MEMORY_LOCATION] },
  });
  /** Template answers by path (with query), fetched once. */
  const cached = new Map<string, Promise<{ status: number; body: string }>>();
  const fromTemplate = (path: string) => {
    let answer = cached.get(path);
    if (!answer) {
      answer = new Promise((resolve, reject) => {
        const req = httpsRequest(
          `${template.url}${path}`,
          {
            ca: template.ca,
            headers: { authorization: `Bearer ${KUBE_MEMORY_TOKEN}`, accept: 'application/json' },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 500, body: Buffer.concat(chunks).toString('utf8') }),
            );
          },
        );
        req.on('error', reject);
        req.end();
      });
      cached.set(path, answer);
    }
    return answer;
  };

  const clusters = new Map<string, Map<string, StoredBackup>>();
  let resourceVersion = 100_000;
  let served = 0;

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const backupsRoute = (key: string, method: string, match: RegExpExecArray, url: URL, body: string) => {
    const [, namespace, name] = match;
    const stored = clusters.get(key) ?? new Map<string, StoredBackup>();
    clusters.set(key, stored);
    if (method === 'GET' && name) {
      const found = stored.get(name);
      return found
        ? { status: 200, body: found.object }
        : kubeStatusWithDetails(404, 'NotFound', `backups.velero.io "${name}" not found`, {
            name,
            group: 'velero.io',
            kind: 'backups',
          });
    }
    if (method === 'POST' && !name) {
      const object = JSON.parse(body) as StoredBackup['object'];
      const objectName = String(object.metadata?.name ?? '');
      if (stored.has(objectName))
        return kubeStatusWithDetails(
          409,
          'AlreadyExists',
          `backups.velero.io "${objectName}" already exists`,
          {
            name: objectName,
            group: 'velero.io',
            kind: 'backups',
          },
        );
      const created = {
        ...object,
        metadata: {
          ...object.metadata,
          namespace,
          uid: randomUUID(),
          resourceVersion: String(++resourceVersion),
          generation: 1,
          creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        },
      };
      // Server-side dry run validates and stores nothing.
      if (url.searchParams.get('dryRun') !== 'All') stored.set(objectName, { object: created });
      return { status: 201, body: created };
    }
    return kubeStatus(
      405,
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
    );
  };

  const server = createServer(
    { cert: cert.cert, key: cert.key },
    (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        served++;
        const url = new URL(req.url ?? '/', 'http://localhost');
        const m = /^\/clusters\/([^/]+)(\/.*)?$/.exec(url.pathname);
        const method = req.method ?? 'GET';
        const key = m ? decodeURIComponent(m[1]!) : '';
        const path = m?.[2] ?? '/';
        try {
          options.onRequest?.(key, method, path);
          if (api.latencyMs > 0) await new Promise((r) => setTimeout(r, api.latencyMs));
          if (!m)
            return send(
              res,
              404,
              kubeStatus(404, 'NotFound', 'the server could not find the requested resource').body,
            );
          if (req.headers.authorization !== `Bearer ${KUBE_MEMORY_TOKEN}`)
            return send(res, 401, kubeStatus(401, 'Unauthorized', 'Unauthorized').body);
          const backups = BACKUPS.exec(path);
          if (backups) {
            const answer = backupsRoute(key, method, backups, url, Buffer.concat(chunks).toString('utf8'));
            return send(res, answer.status, answer.body);
          }
          if (method !== 'GET')
            return send(
              res,
              405,
              kubeStatus(405, 'MethodNotAllowed', 'not served by the memory responder').body,
            );
          const answer = await fromTemplate(`${path}${url.search}`);
          return send(res, answer.status, answer.body);
        } catch (error) {
          return send(res, 500, kubeStatus(500, 'InternalError', String(error)).body);
        }
      });
    },
  );
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const api: KubeMemory = {
    url,
    ca: cert.ca,
    latencyMs: options.latencyMs ?? 0,
    server: (key) => `${url}/clusters/${encodeURIComponent(key)}`,
    backups: (key) => [...(clusters.get(key)?.keys() ?? [])],
    backupCounts: () => new Map([...clusters].filter(([, b]) => b.size > 0).map(([k, b]) => [k, b.size])),
    requests: () => served,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await template.stop();
      rmSync(certDir, { recursive: true, force: true });
    },
  };
  return api;
}
