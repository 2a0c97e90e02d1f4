/**
 * A minimal fake Kubernetes API server over HTTPS, one per cluster. It answers the
 * discovery endpoints (`/version`, `/api`, `/apis`) the way a real API server does,
 * checks the bearer token, injects faults and records every request.
 *
 * Requests are matched against a small route table (`coreRoutes`); later resources
 * (Velero Backup/Restore) are added as further routes, not as branches in the handler.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fault, FaultInjector, RequestLog } from './faults.ts';
import { localCert } from './tls.ts';

export interface KubeFakeOptions {
  /** Cluster name; the `scope` of fault rules and request-log entries. */
  name: string;
  /** Reported `gitVersion` (default `v1.33.2`). */
  gitVersion?: string;
  /** Bearer token every request must carry (default `sandbox-token`). */
  token?: string;
  faults?: FaultInjector;
  log?: RequestLog;
  /** Directory of the CA and server certificate (shared between fakes to save key generation); default: a fresh temporary directory removed on `stop()`. */
  certDir?: string;
}

export interface KubeFake {
  /** `https://127.0.0.1:<port>`. */
  url: string;
  /** PEM file of the CA that signed the server certificate. */
  caFile: string;
  /** PEM of that CA. */
  ca: string;
  /** Changes the `gitVersion` reported from now on (an upgrade). */
  setVersion(gitVersion: string): void;
  stop(): Promise<void>;
}

/** What a route handler answers; `body` is sent as JSON. */
export interface KubeAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** The fake's mutable state that routes read. */
export interface KubeFakeState {
  name: string;
  gitVersion: string;
  /** `host:port` clients reach the server at. */
  address: string;
}

/** One entry of the route table. */
export interface KubeRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Matched against the path without query string; a trailing slash is ignored. */
  path: RegExp;
  /** Operation name used in fault rules and the request log (`GetVersion`). */
  operation: string;
  handle(ctx: { state: KubeFakeState; match: RegExpExecArray; url: URL; body: unknown }): KubeAnswer;
}

const DEFAULT_VERSION = 'v1.33.2';

/** A `meta/v1` Status object as the API server sends for errors. */
export function kubeStatus(code: number, reason: string, message: string): KubeAnswer {
  return {
    status: code,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      ...(code === 404 ? { details: {} } : {}),
      code,
    },
  };
}

/** `version.Info` for a `gitVersion` like `v1.33.2` or `v1.31.4-eks-0123456`. */
export function versionInfo(gitVersion: string): Record<string, string> {
  const m = /^v?(\d+)\.(\d+)/.exec(gitVersion);
  const major = m?.[1] ?? '1';
  const minor = m?.[2] ?? '0';
  // Managed distributions append `+` to minor when gitVersion carries a suffix (EKS, GKE).
  const suffixed = /^v?\d+\.\d+\.\d+[-+]/.test(gitVersion);
  return {
    major,
    minor: suffixed ? `${minor}+` : minor,
    gitVersion,
    gitCommit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    gitTreeState: 'clean',
    buildDate: '2025-06-17T18:36:28Z',
    goVersion: 'go1.24.4',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

/** Groups listed by `/apis`; each serves only its preferred version. */
const API_GROUPS: { name: string; version: string }[] = [
  { name: 'apps', version: 'v1' },
  { name: 'batch', version: 'v1' },
  { name: 'apiextensions.k8s.io', version: 'v1' },
];

/** The discovery routes every API server has. */
export function coreRoutes(): KubeRoute[] {
  return [
    {
      method: 'GET',
      path: /^\/version$/,
      operation: 'GetVersion',
      handle: ({ state }) => ({ status: 200, body: versionInfo(state.gitVersion) }),
    },
    {
      method: 'GET',
      path: /^\/api$/,
      operation: 'GetAPIVersions',
      handle: ({ state }) => ({
        status: 200,
        body: {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: state.address }],
        },
      }),
    },
    {
      method: 'GET',
      path: /^\/apis$/,
      operation: 'GetAPIGroupList',
      handle: () => ({
        status: 200,
        body: {
          kind: 'APIGroupList',
          apiVersion: 'v1',
          groups: API_GROUPS.map((g) => {
            const gv = { groupVersion: `${g.name}/${g.version}`, version: g.version };
            return { name: g.name, versions: [gv], preferredVersion: gv };
          }),
        },
      }),
    },
  ];
}

function faultAnswer(fault: Exclude<Fault, { kind: 'timeout' | 'malformed' }>): KubeAnswer {
  if (fault.kind === 'throttle') {
    const answer = kubeStatus(429, 'TooManyRequests', 'Too many requests, please try again later.');
    answer.headers = { 'retry-after': String(fault.retryAfterSeconds ?? 1) };
    return answer;
  }
  const reason = fault.status === 503 ? 'ServiceUnavailable' : 'InternalError';
  return kubeStatus(fault.status, reason, 'an error on the server has prevented the request from succeeding');
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch {
        resolve(text);
      }
    });
    req.on('error', () => resolve(undefined));
  });
}

/** Starts one fake API server on a free loopback port. */
export async function startKubeFake(options: KubeFakeOptions): Promise<KubeFake> {
  const ownCertDir = options.certDir === undefined;
  const certDir = options.certDir ?? mkdtempSync(join(tmpdir(), 'fleetward-kube-fake-'));
  const cert = localCert(certDir);
  const token = options.token ?? 'sandbox-token';
  const state: KubeFakeState = {
    name: options.name,
    gitVersion: options.gitVersion ?? DEFAULT_VERSION,
    address: '',
  };
  const routes = coreRoutes();
  const stopping = new AbortController();

  const send = (res: ServerResponse, answer: KubeAnswer) => {
    const text = JSON.stringify(answer.body);
    res.writeHead(answer.status, {
      'content-type': 'application/json',
      'cache-control': 'no-cache, private',
      'content-length': Buffer.byteLength(text),
      ...answer.headers,
    });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    let route: KubeRoute | undefined;
    let match: RegExpExecArray | null = null;
    for (const r of routes) {
      match = r.method === req.method ? r.path.exec(path) : null;
      if (match) {
        route = r;
        break;
      }
    }
    const operation = route?.operation ?? 'Unknown';
    const body = await readBody(req);
    const record = (status: number | undefined, fault?: Fault['kind']) =>
      options.log?.record({
        cloud: 'kube',
        operation,
        scope: state.name,
        at: Date.now(),
        durationMs: performance.now() - started,
        ...(status === undefined ? {} : { status }),
        ...(fault ? { fault } : {}),
      });

    await options.faults?.delay(stopping.signal);
    if (stopping.signal.aborted) return;
    const fault = options.faults?.take({ cloud: 'kube', operation, scope: state.name });
    if (fault?.kind === 'timeout') {
      record(undefined, 'timeout');
      return; // never answer; the socket is destroyed on stop()
    }
    if (fault?.kind === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"major":"1","minor":');
      record(200, 'malformed');
      return;
    }
    if (fault) {
      const answer = faultAnswer(fault);
      send(res, answer);
      record(answer.status, fault.kind);
      return;
    }

    const auth = req.headers.authorization;
    if (auth !== `Bearer ${token}`) {
      send(res, kubeStatus(401, 'Unauthorized', 'Unauthorized'));
      record(401);
      return;
    }
    const answer =
      route && match
        ? route.handle({ state, match, url, body })
        : kubeStatus(404, 'NotFound', 'the server could not find the requested resource');
    send(res, answer);
    record(answer.status);
  };

  const server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, kubeStatus(500, 'InternalError', 'internal error'));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  state.address = `127.0.0.1:${port}`;

  let stopped: Promise<void> | undefined;
  return {
    url: `https://127.0.0.1:${port}`,
    caFile: cert.caFile,
    ca: cert.ca,
    setVersion(gitVersion: string) {
      state.gitVersion = gitVersion;
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        stopping.abort();
        server.close(() => {
          if (ownCertDir) rmSync(certDir, { recursive: true, force: true });
          resolve();
        });
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}
