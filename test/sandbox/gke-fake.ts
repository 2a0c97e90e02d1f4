/**
 * A local GKE control plane: a gRPC server for `google.container.v1.ClusterManager`
 * (`ListClusters`, `GetCluster`, `SetLabels`) built from the proto that ships with
 * `@google-cloud/container`, so the real `ClusterManagerClient` talks to it unchanged
 * (plain-text gRPC on loopback, no credentials). Every other method answers UNIMPLEMENTED.
 *
 * `SetLabels` (REST `clusters.setResourceLabels`, the Node client's `setLabels`) behaves like GKE: the request's
 * `labelFingerprint` must equal the cluster's current one, else FAILED_PRECONDITION
 * (HTTP 400 `failedPrecondition`, GKE's own message) and nothing changes; on success the
 * labels are replaced, a new fingerprint is computed and a finished `Operation` returned.
 *
 * Clusters are stored as full `google.container.v1.Cluster` messages and returned as the
 * real API returns them; faults and latency come from the shared {@link FaultInjector}
 * and every request lands in the {@link RequestLog} (cloud `gcp`, scope = project).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { protos } from '@google-cloud/container';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Fault, FaultInjector, RequestInfo, RequestLog } from './faults.ts';
import { assertLoopback } from './net.ts';
import { deniedMessage } from './request-log.ts';

/** A cluster as the GKE API describes it (the v1 `Cluster` message, REST/JSON field names). */
export type GkeClusterInput = protos.google.container.v1.ICluster;

type LogComponent = protos.google.container.v1.LoggingComponentConfig.Component;

export interface GkeFake {
  /** `127.0.0.1:<port>`, for `GcpConfig.endpoint` with `insecure: true`. */
  endpoint: string;
  /** Replaces the clusters of a project; a project never set answers NOT_FOUND. */
  setClusters(projectId: string, clusters: GkeClusterInput[]): void;
  /** Zones ListClusters reports in `missingZones` for a project (the API could not reach them). */
  setMissingZones(projectId: string, zones: string[]): void;
  /**
   * Replaces a cluster's labels behind every client's back (a concurrent update): the
   * fingerprint changes as after a `SetLabels`. Returns the new fingerprint; throws when
   * the cluster does not exist.
   */
  updateLabels(projectId: string, location: string, name: string, labels: Record<string, string>): string;
  /** Ends every call still in flight (injected timeouts included) and closes the server. */
  stop(): Promise<void>;
}

const CLUSTER_SERVICE_PROTO = 'google/container/v1/cluster_service.proto';

/** Include dirs: the container package's protos, then google-gax's (google/api, google/rpc, google/type). */
function protoIncludeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const containerMain = require.resolve('@google-cloud/container');
  const gaxMain = createRequire(containerMain).resolve('google-gax');
  return [join(dirname(containerMain), '..', 'protos'), join(dirname(gaxMain), '..', 'protos')];
}

let serviceDefinition: grpc.ServiceDefinition | undefined;

function clusterManagerService(): grpc.ServiceDefinition {
  if (serviceDefinition) return serviceDefinition;
  const definition = protoLoader.loadSync(CLUSTER_SERVICE_PROTO, {
    includeDirs: protoIncludeDirs(),
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    google: { container: { v1: { ClusterManager: grpc.ServiceClientConstructor } } };
  };
  serviceDefinition = loaded.google.container.v1.ClusterManager.service;
  return serviceDefinition;
}

/** HTTP status of the GKE REST API → the gRPC code the same failure carries (google/rpc/code.proto). */
const GRPC_CODE_OF_HTTP: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  409: grpc.status.ABORTED,
  429: grpc.status.RESOURCE_EXHAUSTED,
  499: grpc.status.CANCELLED,
  500: grpc.status.INTERNAL,
  501: grpc.status.UNIMPLEMENTED,
  503: grpc.status.UNAVAILABLE,
  504: grpc.status.DEADLINE_EXCEEDED,
};

/** gRPC code → the HTTP status the REST surface gives the same failure (google/rpc/code.proto). */
export const HTTP_OF_GRPC_CODE: Partial<Record<grpc.status, number>> = {
  ...Object.fromEntries(Object.entries(GRPC_CODE_OF_HTTP).map(([http, code]) => [code, Number(http)])),
  [grpc.status.UNKNOWN]: 500,
  [grpc.status.ALREADY_EXISTS]: 409,
  [grpc.status.FAILED_PRECONDITION]: 400,
  [grpc.status.OUT_OF_RANGE]: 400,
  [grpc.status.DATA_LOSS]: 500,
};

/** The gRPC code an injected HTTP error status becomes. */
export function grpcCodeOf(httpStatus: number): grpc.status {
  return GRPC_CODE_OF_HTTP[httpStatus] ?? (httpStatus >= 500 ? grpc.status.INTERNAL : grpc.status.UNKNOWN);
}

// --- google.rpc.Status with a google.rpc.RetryInfo detail, hand-encoded (protobuf wire format) ---

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function lengthDelimited(fieldNumber: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((fieldNumber << 3) | 2), varint(payload.length), payload]);
}

function varintField(fieldNumber: number, value: number): Buffer {
  return Buffer.concat([varint(fieldNumber << 3), varint(value)]);
}

/** `grpc-status-details-bin`: Status{code, message, details: [Any(RetryInfo{retry_delay: Duration{seconds}})]}. */
export function retryInfoStatusDetails(
  code: grpc.status,
  message: string,
  retryAfterSeconds: number,
): Buffer {
  const duration = varintField(1, retryAfterSeconds);
  const retryInfo = lengthDelimited(1, duration);
  const any = Buffer.concat([
    lengthDelimited(1, Buffer.from('type.googleapis.com/google.rpc.RetryInfo')),
    lengthDelimited(2, retryInfo),
  ]);
  return Buffer.concat([
    varintField(1, code),
    lengthDelimited(2, Buffer.from(message)),
    lengthDelimited(3, any),
  ]);
}

// --- request parsing ---

interface ParsedParent {
  project: string;
  /** `-` means every location. */
  location: string;
}

function parseParent(request: {
  parent?: string;
  projectId?: string;
  zone?: string;
}): ParsedParent | undefined {
  if (request.parent) {
    const m = /^projects\/([^/]+)\/locations\/([^/]+)$/.exec(request.parent);
    return m ? { project: m[1]!, location: m[2]! } : undefined;
  }
  if (request.projectId) return { project: request.projectId, location: request.zone || '-' };
  return undefined;
}

interface ParsedName extends ParsedParent {
  cluster: string;
}

function parseName(request: { name?: string; projectId?: string; zone?: string; clusterId?: string }) {
  if (request.name) {
    const m = /^projects\/([^/]+)\/locations\/([^/]+)\/clusters\/([^/]+)$/.exec(request.name);
    return m ? ({ project: m[1]!, location: m[2]!, cluster: m[3]! } satisfies ParsedName) : undefined;
  }
  if (request.projectId && request.zone && request.clusterId) {
    return {
      project: request.projectId,
      location: request.zone,
      cluster: request.clusterId,
    } satisfies ParsedName;
  }
  return undefined;
}

// --- the cluster builder ---

const ZONAL = /^[a-z]+-[a-z]+\d+-[a-z]$/;

function shortHash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** The `labelFingerprint` of a label set: 8 hex digits, the same for the same labels in any order. */
export function labelFingerprint(labels: Record<string, string> | null | undefined): string {
  const sorted = Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return shortHash(JSON.stringify(sorted), 8);
}

/**
 * A cluster with the defaults GKE gives a new Standard cluster: running, public endpoint,
 * Google-managed encryption (DECRYPTED application-layer secrets), system and workload
 * logging. `location` decides regional (three zones) or zonal; `selfLink` is filled in by
 * the fake from the project it is stored under.
 */
export function gkeCluster(partial: GkeClusterInput = {}): GkeClusterInput {
  const name = partial.name ?? 'cluster-1';
  const location = partial.location ?? 'europe-west1';
  const zonal = ZONAL.test(location);
  const version = partial.currentMasterVersion ?? '1.33.5-gke.1201000';
  const endpoint =
    partial.endpoint ?? `203.0.113.${(Number.parseInt(shortHash(`${location}/${name}`, 2), 16) % 250) + 1}`;
  const labels = partial.resourceLabels ?? {};
  const loggingConfig: protos.google.container.v1.ILoggingConfig = {
    // The generated typings know repeated enums only as numbers; the API (REST JSON, and gax
    // with `enums: String`) uses the names.
    componentConfig: { enableComponents: ['SYSTEM_COMPONENTS', 'WORKLOADS'] as unknown as LogComponent[] },
  };
  return {
    name,
    description: '',
    initialClusterVersion: version,
    currentMasterVersion: version,
    currentNodeVersion: version,
    location,
    locations: zonal ? [location] : [`${location}-b`, `${location}-c`, `${location}-d`],
    zone: location,
    endpoint,
    status: 'RUNNING',
    createTime: '2025-03-14T09:26:53+00:00',
    resourceLabels: labels,
    labelFingerprint: labelFingerprint(labels),
    network: 'default',
    subnetwork: 'default',
    clusterIpv4Cidr: '10.8.0.0/14',
    servicesIpv4Cidr: '34.118.224.0/20',
    currentNodeCount: zonal ? 3 : 9,
    loggingService: 'logging.googleapis.com/kubernetes',
    monitoringService: 'monitoring.googleapis.com/kubernetes',
    loggingConfig,
    databaseEncryption: { state: 'DECRYPTED', currentState: 'CURRENT_STATE_DECRYPTED' },
    masterAuthorizedNetworksConfig: { enabled: false },
    controlPlaneEndpointsConfig: {
      ipEndpointsConfig: {
        enabled: true,
        enablePublicEndpoint: true,
        globalAccess: false,
        publicEndpoint: endpoint,
      },
    },
    releaseChannel: { channel: 'REGULAR' },
    id: shortHash(`id/${location}/${name}`, 32),
    etag: shortHash(`etag/${location}/${name}`, 16),
    ...partial,
  };
}

/** A cluster whose `name` and `location` are missing: a payload discovery must report unparseable. */
function malformedCluster(project: string, n: number): GkeClusterInput {
  return {
    ...gkeCluster({ name: `malformed-${n}`, location: 'europe-west1' }),
    name: '',
    location: '',
    zone: '',
    locations: [],
    selfLink: '',
    id: shortHash(`malformed/${project}/${n}`, 32),
  };
}

function locationOf(cluster: GkeClusterInput): string {
  return cluster.location || cluster.zone || '';
}

// --- the server ---

type Handler = grpc.handleUnaryCall<Record<string, unknown>, Record<string, unknown>>;

/** A `SetLabels` request as the fake sees it, handed to {@link GkeFakeOptions.onSetLabels}. */
export interface SetLabelsCall {
  project: string;
  location: string;
  cluster: string;
  resourceLabels: Record<string, string>;
  labelFingerprint: string;
}

export interface GkeFakeOptions {
  faults?: FaultInjector;
  log?: RequestLog;
  /**
   * Runs when a `SetLabels` request arrives, before its fingerprint is checked: a test
   * can call `updateLabels` here to lose the race against another writer.
   */
  onSetLabels?: (call: SetLabelsCall) => void;
}

export async function startGkeFake(options: GkeFakeOptions = {}): Promise<GkeFake> {
  const { faults, log, onSetLabels } = options;
  const projects = new Map<string, GkeClusterInput[]>();
  const missingZones = new Map<string, string[]>();
  const stopping = new AbortController();
  const hanging = new Set<grpc.sendUnaryData<Record<string, unknown>>>();
  let malformedCount = 0;

  /** Runs one call: latency, fault, then the normal answer; records it in the log. */
  const serve =
    (
      operation: 'ListClusters' | 'GetCluster' | 'SetLabels',
      answer: (request: Record<string, unknown>) => AnswerResult,
    ): Handler =>
    (call, callback) => {
      const started = performance.now();
      const request = call.request;
      const target = operation === 'ListClusters' ? parseParent(request) : parseName(request);
      const info: RequestInfo = { cloud: 'gcp', operation, at: Date.now() };
      if (target) info.scope = target.project;
      if (target && target.location !== '-') info.region = target.location;
      const finish = (status: number, fault?: Fault['kind']) => {
        const entry: RequestInfo = { ...info, durationMs: performance.now() - started, status };
        if (fault) entry.fault = fault;
        log?.record(entry);
      };
      const fail = (code: grpc.status, message: string, fault?: Fault['kind'], metadata?: grpc.Metadata) => {
        finish(HTTP_OF_GRPC_CODE[code] ?? 500, fault);
        const error: Partial<grpc.StatusObject> = { code, details: message };
        if (metadata) error.metadata = metadata;
        callback(error);
      };
      void (async () => {
        await faults?.delay(stopping.signal);
        if (stopping.signal.aborted) return fail(grpc.status.UNAVAILABLE, 'server is shutting down');
        const fault = faults?.take(info);
        if (fault?.kind === 'timeout') {
          // Accept and never answer; stop() ends the call.
          hanging.add(callback);
          log?.record({ ...info, fault: 'timeout' });
          return;
        }
        if (fault?.kind === 'throttle') {
          const message =
            'Quota exceeded for quota metric "Read requests" of service container.googleapis.com.';
          const code = grpc.status.RESOURCE_EXHAUSTED;
          const metadata = new grpc.Metadata();
          if (fault.retryAfterSeconds !== undefined) {
            metadata.set(
              'grpc-status-details-bin',
              retryInfoStatusDetails(code, message, fault.retryAfterSeconds),
            );
          }
          return fail(code, message, 'throttle', metadata);
        }
        if (fault?.kind === 'error') {
          return fail(grpcCodeOf(fault.status), `injected error (HTTP ${fault.status})`, 'error');
        }
        if (fault?.kind === 'deny') return fail(grpc.status.PERMISSION_DENIED, deniedMessage(info), 'deny');
        const result = answer(request);
        if ('error' in result) return fail(result.error.code, result.error.message);
        let response = result.response;
        if (fault?.kind === 'malformed' && operation === 'ListClusters' && target) {
          const clusters = (response.clusters as GkeClusterInput[] | undefined) ?? [];
          response = {
            ...response,
            clusters: [...clusters, malformedCluster(target.project, ++malformedCount)],
          };
        } else if (fault?.kind === 'malformed') {
          response = { ...response, name: '', location: '' };
        }
        finish(200, fault?.kind);
        callback(null, response);
      })();
    };

  type AnswerResult =
    | { response: Record<string, unknown> }
    | { error: { code: grpc.status; message: string } };

  const notFound = (project: string): AnswerResult => ({
    // The REST API answers 403 "...or it may not exist" / 404; gRPC carries NOT_FOUND.
    error: { code: grpc.status.NOT_FOUND, message: `Project "${project}" not found or permission denied.` },
  });

  const listClusters = serve('ListClusters', (request) => {
    const parent = parseParent(request);
    if (!parent) return { error: { code: grpc.status.INVALID_ARGUMENT, message: 'Invalid parent.' } };
    const clusters = projects.get(parent.project);
    if (!clusters) return notFound(parent.project);
    const all = parent.location === '-';
    return {
      response: {
        clusters: clusters.filter((c) => all || locationOf(c) === parent.location),
        missingZones: (missingZones.get(parent.project) ?? []).filter(
          (z) => all || z.startsWith(parent.location),
        ),
      },
    };
  });

  /** The stored cluster a request names, or the error GKE answers. */
  const findCluster = (
    request: Record<string, unknown>,
  ): { name: ParsedName; cluster: GkeClusterInput } | { error: { code: grpc.status; message: string } } => {
    const name = parseName(request);
    if (!name) return { error: { code: grpc.status.INVALID_ARGUMENT, message: 'Invalid name.' } };
    const clusters = projects.get(name.project);
    if (!clusters) return notFound(name.project) as { error: { code: grpc.status; message: string } };
    const found = clusters.find((c) => c.name === name.cluster && locationOf(c) === name.location);
    if (!found) {
      return {
        error: {
          code: grpc.status.NOT_FOUND,
          message: `Not found: projects/${name.project}/locations/${name.location}/clusters/${name.cluster}.`,
        },
      };
    }
    return { name, cluster: found };
  };

  const getCluster = serve('GetCluster', (request) => {
    const found = findCluster(request);
    if ('error' in found) return found;
    return { response: found.cluster as Record<string, unknown> };
  });

  let operationCount = 0;

  /** Replaces the labels, new fingerprint and etag, as every successful label write does. */
  const writeLabels = (cluster: GkeClusterInput, labels: Record<string, string>): string => {
    cluster.resourceLabels = { ...labels };
    cluster.labelFingerprint = labelFingerprint(labels);
    cluster.etag = shortHash(
      `etag/${cluster.etag ?? ''}/${cluster.labelFingerprint}/${++operationCount}`,
      16,
    );
    return cluster.labelFingerprint;
  };

  const setLabels = serve('SetLabels', (request) => {
    const target = parseName(request);
    if (target && onSetLabels) {
      onSetLabels({
        project: target.project,
        location: target.location,
        cluster: target.cluster,
        resourceLabels: { ...((request.resourceLabels as Record<string, string> | undefined) ?? {}) },
        labelFingerprint: (request.labelFingerprint as string | undefined) ?? '',
      });
    }
    const found = findCluster(request);
    if ('error' in found) return found;
    const { name, cluster } = found;
    const supplied = (request.labelFingerprint as string | undefined) ?? '';
    const expected = cluster.labelFingerprint ?? '';
    if (supplied !== expected) {
      // GKE's answer: HTTP 400, reason `failedPrecondition` (gRPC FAILED_PRECONDITION).
      return {
        error: {
          code: grpc.status.FAILED_PRECONDITION,
          message:
            'Labels could not be set due to fingerprint mismatch; try again with the proper fingerprint: ' +
            `incorrect fingerprint supplied was "${supplied}", the expected one is "${expected}".`,
        },
      };
    }
    const started = new Date();
    writeLabels(cluster, (request.resourceLabels as Record<string, string> | undefined) ?? {});
    const base = `https://container.googleapis.com/v1/projects/${name.project}/locations/${name.location}`;
    const operationName = `operation-${operationCount}`;
    return {
      response: {
        name: operationName,
        zone: name.location,
        operationType: 'SET_LABELS',
        status: 'DONE',
        selfLink: `${base}/operations/${operationName}`,
        targetLink: `${base}/clusters/${name.cluster}`,
        location: name.location,
        startTime: started.toISOString(),
        endTime: new Date().toISOString(),
      },
    };
  });

  const server = new grpc.Server();
  server.addService(clusterManagerService(), {
    ListClusters: listClusters,
    GetCluster: getCluster,
    SetLabels: setLabels,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const endpoint = `127.0.0.1:${port}`;
  assertLoopback(endpoint);

  return {
    endpoint,
    setClusters(projectId, clusters) {
      projects.set(
        projectId,
        clusters.map((c) => {
          const copy = structuredClone(c);
          // Output-only field the API computes from where the cluster lives.
          if (copy.selfLink === undefined && copy.name && locationOf(copy)) {
            copy.selfLink = `https://container.googleapis.com/v1/projects/${projectId}/locations/${locationOf(copy)}/clusters/${copy.name}`;
          }
          return copy;
        }),
      );
    },
    setMissingZones(projectId, zones) {
      missingZones.set(projectId, [...zones]);
    },
    updateLabels(projectId, location, name, labels) {
      const found = findCluster({ name: `projects/${projectId}/locations/${location}/clusters/${name}` });
      if ('error' in found) throw new Error(found.error.message);
      return writeLabels(found.cluster, labels);
    },
    async stop() {
      stopping.abort();
      for (const callback of hanging) callback({ code: grpc.status.UNAVAILABLE, details: 'server stopped' });
      hanging.clear();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
