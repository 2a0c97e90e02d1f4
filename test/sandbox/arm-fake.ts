/**
 * A local Azure Resource Manager for AKS: an HTTPS server on 127.0.0.1 that answers the
 * few ARM calls Fleetward makes, in the wire shape of the public ARM REST reference
 * (ManagedCluster JSON with `properties`, `systemData`, ARM error bodies, `nextLink` paging).
 *
 * Implemented:
 * - `GET /subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters` (paged by `nextLink`
 *   with a `$skipToken`; operation `managedClusters.list`)
 * - `GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}`
 *   (operation `managedClusters.get`)
 * - `GET {clusterId}/providers/Microsoft.Insights/diagnosticSettings` (operation `diagnosticSettings.list`):
 *   AKS control-plane audit logs are the `kube-audit` / `kube-audit-admin` categories of a diagnostic setting.
 * - `POST {clusterId}/listClusterUserCredential` (operation `managedClusters.listClusterUserCredentials`):
 *   `{ kubeconfigs: [{ name: 'clusterUser', value: <base64 kubeconfig> }] }` from `setUserCredentials`.
 * - `GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}`
 *   (operation `storageAccounts.getProperties`): a StorageAccount from `setStorageAccount`.
 *
 * Every request needs `Authorization: Bearer <token>` (any non-empty token, or exactly `token` when given)
 * and an `api-version` query parameter, as ARM does. Paths match case-insensitively, as in ARM.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { join } from 'node:path';
import {
  type Fault,
  FaultInjector,
  holdResponse,
  type RequestInfo,
  RequestLog,
  sendTruncatedJson,
} from './faults.ts';
import { localCert } from './tls.ts';

/** The placeholder subscription of the ARM REST reference examples. */
export const EXAMPLE_SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';

/** `systemData` of an ARM resource (timestamps are ISO 8601 strings on the wire). */
export type ArmSystemData = {
  createdBy?: string;
  createdByType?: string;
  createdAt?: string;
  lastModifiedBy?: string;
  lastModifiedByType?: string;
  lastModifiedAt?: string;
};

/** The `properties` of a ManagedCluster as ARM sends them (a subset is typed; anything else passes through). */
export type ArmManagedClusterProperties = {
  provisioningState?: string;
  powerState?: { code?: string };
  maxAgentPools?: number;
  kubernetesVersion?: string;
  currentKubernetesVersion?: string;
  dnsPrefix?: string;
  fqdn?: string;
  privateFQDN?: string;
  azurePortalFQDN?: string;
  agentPoolProfiles?: Record<string, unknown>[];
  nodeResourceGroup?: string;
  enableRBAC?: boolean;
  supportPlan?: string;
  aadProfile?: Record<string, unknown>;
  apiServerAccessProfile?: {
    enablePrivateCluster?: boolean;
    enablePrivateClusterPublicFQDN?: boolean;
    privateDNSZone?: string;
    authorizedIPRanges?: string[];
    enableVnetIntegration?: boolean;
  };
  securityProfile?: {
    azureKeyVaultKms?: {
      enabled?: boolean;
      keyId?: string;
      keyVaultNetworkAccess?: string;
      keyVaultResourceId?: string;
    };
    [key: string]: unknown;
  };
  networkProfile?: Record<string, unknown>;
  oidcIssuerProfile?: Record<string, unknown>;
  [key: string]: unknown;
};

/** A ManagedCluster resource exactly as ARM serialises it. */
export type ArmManagedCluster = {
  id: string;
  name: string;
  type: string;
  location: string;
  tags?: Record<string, string>;
  eTag?: string;
  sku?: { name?: string; tier?: string };
  identity?: Record<string, unknown>;
  systemData?: ArmSystemData;
  properties?: ArmManagedClusterProperties;
  [key: string]: unknown;
};

/** What `setClusters` accepts: normally an `aksCluster()` or a documented sample; fields may be left out to model bad payloads. */
export type AksClusterInput = Partial<ArmManagedCluster>;

/** The control-plane log categories of AKS that carry the Kubernetes audit log. */
export type AksAuditCategory = 'kube-audit' | 'kube-audit-admin';

/** One diagnostic setting of a cluster, reduced to the log categories it enables. */
export interface DiagnosticSettingInput {
  name?: string;
  logs: { category: AksAuditCategory | (string & {}); enabled: boolean }[];
}

/** Convenient inputs for `aksCluster`; every field has a realistic default. */
export interface AksClusterSpec {
  subscriptionId?: string;
  resourceGroup?: string;
  name?: string;
  /** ARM location, e.g. `westeurope` (ARM also accepts display names; the fake stores what it is given). */
  location?: string;
  kubernetesVersion?: string;
  /** Defaults to `kubernetesVersion`. */
  currentKubernetesVersion?: string;
  provisioningState?: string;
  /** `Running` or `Stopped`; `null` leaves `powerState` out. */
  powerState?: string | null;
  /** Private API server (no public endpoint). */
  privateCluster?: boolean;
  /** For a private cluster: also publish a public DNS name (it resolves to the private address). */
  privateClusterPublicFqdn?: boolean;
  /** API server VNet integration. */
  vnetIntegration?: boolean;
  authorizedIPRanges?: string[];
  /** Key Vault key id used for KMS envelope encryption of secrets; leaves KMS disabled when absent. */
  kmsKeyId?: string;
  tags?: Record<string, string>;
  /** ISO 8601; `null` leaves `systemData` out. */
  createdAt?: string | null;
  skuTier?: 'Free' | 'Standard' | 'Premium';
  /** Deep-merged over the generated `properties`. */
  properties?: ArmManagedClusterProperties;
}

function shortHash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

function guidFrom(text: string): string {
  const h = shortHash(text, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge<T extends Record<string, unknown>>(base: T, over: Record<string, unknown> | undefined): T {
  if (!over) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out as T;
}

/** The ARM id of a managed cluster. */
export function managedClusterId(subscriptionId: string, resourceGroup: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${name}`;
}

/** Builds a ManagedCluster in ARM's wire shape with realistic defaults (a public, running, KMS-less cluster). */
export function aksCluster(spec: AksClusterSpec = {}): ArmManagedCluster {
  const subscriptionId = spec.subscriptionId ?? EXAMPLE_SUBSCRIPTION;
  const resourceGroup = spec.resourceGroup ?? 'rg-fleet';
  const name = spec.name ?? 'aks-1';
  const location = spec.location ?? 'westeurope';
  const kubernetesVersion = spec.kubernetesVersion ?? '1.31.2';
  const id = managedClusterId(subscriptionId, resourceGroup, name);
  const dnsPrefix = `${name}-dns`.slice(0, 54);
  const hash = shortHash(id, 8);
  const dnsLocation = location.toLowerCase().replace(/\s+/g, '');
  const isPrivate = spec.privateCluster ?? false;
  const publicName = !isPrivate || spec.privateClusterPublicFqdn === true;
  const apiServerAccessProfile: NonNullable<ArmManagedClusterProperties['apiServerAccessProfile']> = {};
  if (isPrivate) {
    apiServerAccessProfile.enablePrivateCluster = true;
    apiServerAccessProfile.enablePrivateClusterPublicFQDN = spec.privateClusterPublicFqdn ?? false;
    apiServerAccessProfile.privateDNSZone = 'system';
  }
  if (spec.vnetIntegration) apiServerAccessProfile.enableVnetIntegration = true;
  if (spec.authorizedIPRanges) apiServerAccessProfile.authorizedIPRanges = spec.authorizedIPRanges;
  const properties: ArmManagedClusterProperties = {
    provisioningState: spec.provisioningState ?? 'Succeeded',
    ...(spec.powerState === null ? {} : { powerState: { code: spec.powerState ?? 'Running' } }),
    maxAgentPools: 100,
    kubernetesVersion,
    currentKubernetesVersion: spec.currentKubernetesVersion ?? kubernetesVersion,
    dnsPrefix,
    ...(publicName ? { fqdn: `${dnsPrefix}-${hash}.hcp.${dnsLocation}.azmk8s.io` } : {}),
    ...(isPrivate
      ? { privateFQDN: `${dnsPrefix}-${hash}.${guidFrom(`${id}/dns`)}.privatelink.${dnsLocation}.azmk8s.io` }
      : { azurePortalFQDN: `${dnsPrefix}-${hash}.portal.hcp.${dnsLocation}.azmk8s.io` }),
    agentPoolProfiles: [
      {
        name: 'system',
        count: 3,
        vmSize: 'Standard_D4ds_v5',
        osDiskSizeGB: 128,
        maxPods: 110,
        type: 'VirtualMachineScaleSets',
        mode: 'System',
        osType: 'Linux',
        osSKU: 'AzureLinux',
        provisioningState: spec.provisioningState ?? 'Succeeded',
        powerState: { code: spec.powerState ?? 'Running' },
        orchestratorVersion: kubernetesVersion,
        currentOrchestratorVersion: spec.currentKubernetesVersion ?? kubernetesVersion,
        availabilityZones: ['1', '2', '3'],
        nodeImageVersion: 'AzureLinuxContainerHost-202501.01.0',
      },
    ],
    nodeResourceGroup: `MC_${resourceGroup}_${name}_${dnsLocation}`,
    enableRBAC: true,
    supportPlan: 'KubernetesOfficial',
    aadProfile: { managed: true, enableAzureRBAC: true, tenantID: guidFrom(`${subscriptionId}/tenant`) },
    ...(Object.keys(apiServerAccessProfile).length > 0 ? { apiServerAccessProfile } : {}),
    securityProfile: spec.kmsKeyId
      ? { azureKeyVaultKms: { enabled: true, keyId: spec.kmsKeyId, keyVaultNetworkAccess: 'Public' } }
      : {},
    networkProfile: {
      networkPlugin: 'azure',
      networkPluginMode: 'overlay',
      networkPolicy: 'cilium',
      networkDataplane: 'cilium',
      podCidr: '10.244.0.0/16',
      serviceCidr: '10.0.0.0/16',
      dnsServiceIP: '10.0.0.10',
      outboundType: 'loadBalancer',
      loadBalancerSku: 'standard',
      podCidrs: ['10.244.0.0/16'],
      serviceCidrs: ['10.0.0.0/16'],
      ipFamilies: ['IPv4'],
    },
    oidcIssuerProfile: {
      enabled: true,
      issuerURL: `https://${dnsLocation}.oic.prod-aks.azure.com/${guidFrom(id)}/`,
    },
  };
  return {
    id,
    name,
    type: 'Microsoft.ContainerService/ManagedClusters',
    location,
    tags: spec.tags ?? {},
    sku: { name: 'Base', tier: spec.skuTier ?? 'Standard' },
    identity: {
      type: 'SystemAssigned',
      principalId: guidFrom(`${id}/principal`),
      tenantId: guidFrom(`${subscriptionId}/tenant`),
    },
    ...(spec.createdAt === null
      ? {}
      : {
          systemData: {
            createdBy: 'platform@example.com',
            createdByType: 'User',
            createdAt: spec.createdAt ?? '2025-01-15T09:30:00.0000000Z',
            lastModifiedBy: 'platform@example.com',
            lastModifiedByType: 'User',
            lastModifiedAt: spec.createdAt ?? '2025-01-15T09:30:00.0000000Z',
          },
        }),
    properties: deepMerge(properties, spec.properties),
  };
}

/** Inputs of `setStorageAccount`; everything but `location` has a realistic default. */
export interface StorageAccountSpec {
  /** ARM location, e.g. `westeurope`. */
  location: string;
  /** `primaryEndpoints.blob` (default `https://<name>.blob.core.windows.net/`), e.g. an Azurite endpoint. */
  blobEndpoint?: string;
  /** Default `Standard_LRS`. Geo-redundant SKUs (`*GRS`, `*GZRS`) need `secondaryLocation`. */
  sku?: string;
  /** The paired region a geo-redundant account replicates to. */
  secondaryLocation?: string;
  /** Default `StorageV2`. */
  kind?: string;
  tags?: Record<string, string>;
  /** ISO 8601 (default 2025-01-15T09:30:00Z). */
  createdAt?: string;
}

/** A StorageAccount resource as ARM serialises it (a subset is typed; anything else passes through). */
export type ArmStorageAccount = {
  id: string;
  name: string;
  type: 'Microsoft.Storage/storageAccounts';
  location: string;
  kind: string;
  sku: { name: string; tier: string };
  tags: Record<string, string>;
  properties: {
    provisioningState: string;
    creationTime: string;
    primaryEndpoints: Record<string, string>;
    primaryLocation: string;
    statusOfPrimary: string;
    secondaryLocation?: string;
    statusOfSecondary?: string;
    [key: string]: unknown;
  };
};

/** The ARM id of a storage account. */
export function storageAccountId(subscriptionId: string, resourceGroup: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Storage/storageAccounts/${name}`;
}

/** Builds a StorageAccount in ARM's wire shape (the reference example "StorageAccountGetProperties"). */
export function storageAccount(
  subscriptionId: string,
  resourceGroup: string,
  name: string,
  spec: StorageAccountSpec,
): ArmStorageAccount {
  const sku = spec.sku ?? 'Standard_LRS';
  const geo = /(^|_)(RA)?G(Z)?RS$/i.test(sku);
  if (geo && !spec.secondaryLocation) {
    throw new RangeError(
      `storage account ${name}: sku ${sku} replicates to a paired region; give secondaryLocation`,
    );
  }
  const created = spec.createdAt ?? '2025-01-15T09:30:00.0000000Z';
  const host = (service: string) => `https://${name}.${service}.core.windows.net/`;
  const blob = spec.blobEndpoint ? `${spec.blobEndpoint.replace(/\/+$/, '')}/` : host('blob');
  const encrypted = { keyType: 'Account', enabled: true, lastEnabledTime: created };
  return {
    sku: { name: sku, tier: sku.startsWith('Premium') ? 'Premium' : 'Standard' },
    kind: spec.kind ?? 'StorageV2',
    id: storageAccountId(subscriptionId, resourceGroup, name),
    name,
    type: 'Microsoft.Storage/storageAccounts',
    location: spec.location,
    tags: spec.tags ?? {},
    properties: {
      keyCreationTime: { key1: created, key2: created },
      privateEndpointConnections: [],
      minimumTlsVersion: 'TLS1_2',
      allowBlobPublicAccess: false,
      allowSharedKeyAccess: true,
      networkAcls: { bypass: 'AzureServices', virtualNetworkRules: [], ipRules: [], defaultAction: 'Allow' },
      supportsHttpsTrafficOnly: true,
      encryption: { services: { file: encrypted, blob: encrypted }, keySource: 'Microsoft.Storage' },
      accessTier: 'Hot',
      provisioningState: 'Succeeded',
      creationTime: created,
      primaryEndpoints: {
        dfs: host('dfs'),
        web: `https://${name}.z6.web.core.windows.net/`,
        blob,
        queue: host('queue'),
        table: host('table'),
        file: host('file'),
      },
      primaryLocation: spec.location,
      statusOfPrimary: 'available',
      ...(geo ? { secondaryLocation: spec.secondaryLocation!, statusOfSecondary: 'available' } : {}),
    },
  };
}

export interface ArmFakeOptions {
  faults?: FaultInjector;
  log?: RequestLog;
  /** Items per list page before a `nextLink` (default 100). */
  pageSize?: number;
  /** Where the CA and server certificate live (default `.fleetward/sandbox/tls`). */
  certDir?: string;
  /** When set, the only bearer token accepted; others get 401 `InvalidAuthenticationToken`. */
  token?: string;
}

export interface ArmFake {
  /** `https://127.0.0.1:<port>`: the ARM endpoint to configure. */
  endpoint: string;
  /** PEM file of the CA that signed the server certificate (`caFile` in the Azure config). */
  caFile: string;
  /** The same CA as PEM text. */
  ca: string;
  /** Every request, in arrival order (the `log` option, or a fresh one). */
  log: RequestLog;
  /** Replaces the clusters of a subscription and makes it known (an unknown subscription answers 404). */
  setClusters(subscriptionId: string, clusters: AksClusterInput[]): void;
  /** Replaces the diagnostic settings of a cluster (by ARM id). */
  setDiagnosticSettings(clusterId: string, settings: DiagnosticSettingInput[]): void;
  /** Creates or replaces a storage account (and makes its subscription known to storage calls); returns the resource. */
  setStorageAccount(
    subscriptionId: string,
    resourceGroup: string,
    name: string,
    spec: StorageAccountSpec,
  ): ArmStorageAccount;
  /** The kubeconfig `listClusterUserCredential` answers for a cluster (by ARM id); without one it answers 404. */
  setUserCredentials(clusterId: string, kubeconfigYaml: string): void;
  /** Requests seen so far, optionally only one operation and/or scope. */
  requests(filter?: { operation?: string; scope?: string }): RequestInfo[];
  /** Closes every connection (answering held requests by dropping them) and the server. */
  stop(): Promise<void>;
}

/** What the request log needs to know about one request, filled in while it is handled. */
interface RequestContext {
  operation: string;
  scope?: string;
  fault?: Fault['kind'] | undefined;
}

const CLUSTERS_PATH =
  /^\/subscriptions\/([^/]+)\/providers\/microsoft\.containerservice\/managedclusters\/?$/i;
const CLUSTER_PATH =
  /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/microsoft\.containerservice\/managedclusters\/([^/]+)\/?$/i;
const STORAGE_ACCOUNT_PATH =
  /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/microsoft\.storage\/storageaccounts\/([^/]+)\/?$/i;
const USER_CREDENTIAL_PATH =
  /^(\/subscriptions\/([^/]+)\/resourcegroups\/[^/]+\/providers\/microsoft\.containerservice\/managedclusters\/[^/]+)\/listclusterusercredential\/?$/i;
const DIAGNOSTICS_PATH =
  /^(\/subscriptions\/([^/]+)\/resourcegroups\/[^/]+\/providers\/microsoft\.containerservice\/managedclusters\/[^/]+)\/providers\/microsoft\.insights\/diagnosticsettings\/?$/i;

const ERROR_CODES: Record<number, string> = {
  400: 'BadRequest',
  401: 'AuthenticationFailed',
  403: 'AuthorizationFailed',
  404: 'NotFound',
  408: 'RequestTimeout',
  409: 'Conflict',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
  504: 'GatewayTimeout',
};

function encodeSkipToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64url');
}

function decodeSkipToken(token: string): number | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    const offset = isPlainObject(parsed) ? parsed.offset : undefined;
    return typeof offset === 'number' && Number.isInteger(offset) && offset >= 0 ? offset : undefined;
  } catch {
    return undefined;
  }
}

/** Starts the fake on a free loopback port. */
export async function startArmFake(options: ArmFakeOptions = {}): Promise<ArmFake> {
  const faults = options.faults ?? new FaultInjector();
  const log = options.log ?? new RequestLog();
  const pageSize = options.pageSize ?? 100;
  if (!Number.isInteger(pageSize) || pageSize < 1)
    throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
  const cert = localCert(options.certDir ?? join('.fleetward', 'sandbox', 'tls'));
  const subscriptions = new Map<string, AksClusterInput[]>();
  const diagnostics = new Map<string, DiagnosticSettingInput[]>();
  /** Storage accounts by lower-cased ARM id. */
  const storageAccounts = new Map<string, ArmStorageAccount>();
  const storageSubscriptions = new Set<string>();
  /** Kubeconfig YAML by lower-cased cluster ARM id. */
  const userCredentials = new Map<string, string>();
  const held = new Set<ServerResponse>();
  const stopping = new AbortController();
  let endpoint = '';

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'x-ms-request-id': randomUUID(),
      'x-ms-correlation-request-id': randomUUID(),
      ...headers,
    });
    res.end(text);
  };
  const sendError = (res: ServerResponse, status: number, code: string, message: string, headers = {}) =>
    sendJson(res, status, { error: { code, message } }, headers);

  /** Applies a fault; returns true when it answered (or holds) the request. */
  const applyFault = (res: ServerResponse, fault: Fault | undefined, body: () => unknown): boolean => {
    if (!fault) return false;
    switch (fault.kind) {
      case 'throttle':
        sendError(
          res,
          429,
          'TooManyRequests',
          'The request is being throttled as the limit has been reached for operation type - Read.',
          fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) },
        );
        return true;
      case 'error':
        sendError(
          res,
          fault.status,
          ERROR_CODES[fault.status] ?? 'InternalServerError',
          `Injected error ${fault.status}.`,
        );
        return true;
      case 'timeout':
        holdResponse(res, held);
        return true;
      case 'malformed':
        sendTruncatedJson(res, body());
        return true;
    }
  };

  /** Waits the injected latency, then asks for a fault for this request and notes it for the log. */
  const takeFault = async (info: RequestContext): Promise<Fault | undefined> => {
    await faults.delay(stopping.signal);
    const fault = faults.take({
      cloud: 'azure',
      operation: info.operation,
      ...(info.scope ? { scope: info.scope } : {}),
    });
    info.fault = fault?.kind;
    return fault;
  };

  const knownSubscription = (res: ServerResponse, sub: string): AksClusterInput[] | undefined => {
    const clusters = subscriptions.get(sub.toLowerCase());
    if (!clusters)
      sendError(res, 404, 'SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
    return clusters;
  };

  const findCluster = (id: string): AksClusterInput | undefined => {
    const wanted = id.toLowerCase();
    for (const clusters of subscriptions.values()) {
      const found = clusters.find((c) => typeof c.id === 'string' && c.id.toLowerCase() === wanted);
      if (found) return found;
    }
    return undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, info: RequestContext) => {
    const url = new URL(req.url ?? '/', endpoint);
    const path = url.pathname;
    const list = CLUSTERS_PATH.exec(path);
    const get = list ? null : CLUSTER_PATH.exec(path);
    const diag = list || get ? null : DIAGNOSTICS_PATH.exec(path);
    const account = list || get || diag ? null : STORAGE_ACCOUNT_PATH.exec(path);
    const credential = list || get || diag || account ? null : USER_CREDENTIAL_PATH.exec(path);
    // Name the request first, so even a refused one is logged with its operation and scope.
    if (list) Object.assign(info, { operation: 'managedClusters.list', scope: list[1] });
    else if (get) Object.assign(info, { operation: 'managedClusters.get', scope: get[1] });
    else if (diag) Object.assign(info, { operation: 'diagnosticSettings.list', scope: diag[2] });
    else if (account) Object.assign(info, { operation: 'storageAccounts.getProperties', scope: account[1] });
    else if (credential)
      Object.assign(info, { operation: 'managedClusters.listClusterUserCredentials', scope: credential[2] });

    const method = credential ? 'POST' : 'GET';
    if (req.method !== method) {
      sendError(res, 405, 'MethodNotAllowed', `The fake answers ${method} here, not ${req.method}.`);
      return;
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer) {
      sendError(
        res,
        401,
        'AuthenticationFailed',
        "Authentication failed. The 'Authorization' header is missing.",
      );
      return;
    }
    if (options.token !== undefined && bearer !== options.token) {
      sendError(res, 401, 'InvalidAuthenticationToken', 'The access token is invalid.');
      return;
    }
    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion) {
      sendError(
        res,
        400,
        'MissingApiVersionParameter',
        'The api-version query parameter (?api-version=) is required for all requests.',
      );
      return;
    }

    if (list) {
      const sub = list[1]!;
      const skipToken = url.searchParams.get('$skipToken') ?? url.searchParams.get('$skiptoken');
      const offset = skipToken === null ? 0 : decodeSkipToken(skipToken);
      const page = (clusters: AksClusterInput[]) => {
        const start = offset ?? 0;
        const value = clusters.slice(start, start + pageSize);
        const next = start + pageSize;
        if (next >= clusters.length) return { value };
        const link = new URL(path, endpoint);
        link.searchParams.set('api-version', apiVersion);
        link.searchParams.set('$skipToken', encodeSkipToken(next));
        return { value, nextLink: link.toString() };
      };
      if (applyFault(res, await takeFault(info), () => page(subscriptions.get(sub.toLowerCase()) ?? [])))
        return;
      const clusters = knownSubscription(res, sub);
      if (!clusters) return;
      if (offset === undefined) {
        sendError(res, 400, 'InvalidSkipToken', `The skip token '${skipToken}' is not valid.`);
        return;
      }
      sendJson(res, 200, page(clusters));
      return;
    }

    if (get) {
      const [, sub, rg, name] = get as unknown as [string, string, string, string];
      const found = () => findCluster(managedClusterId(sub, rg, name));
      if (applyFault(res, await takeFault(info), () => found() ?? {})) return;
      if (!knownSubscription(res, sub)) return;
      const cluster = found();
      if (!cluster) {
        sendError(
          res,
          404,
          'ResourceNotFound',
          `The Resource 'Microsoft.ContainerService/managedClusters/${name}' under resource group '${rg}' was not found.`,
        );
        return;
      }
      sendJson(res, 200, cluster);
      return;
    }

    if (diag) {
      const [, clusterPath, sub] = diag as unknown as [string, string, string];
      const settings = () => {
        const canonical = findCluster(clusterPath)?.id ?? clusterPath;
        return {
          value: (diagnostics.get(clusterPath.toLowerCase()) ?? []).map((s, i) => {
            const name = s.name ?? `aks-diagnostics-${i + 1}`;
            return {
              id: `${canonical}/providers/microsoft.insights/diagnosticSettings/${name}`,
              type: 'Microsoft.Insights/diagnosticSettings',
              name,
              properties: {
                workspaceId: `/subscriptions/${sub}/resourceGroups/rg-monitoring/providers/Microsoft.OperationalInsights/workspaces/law-fleet`,
                logs: s.logs.map((l) => ({
                  category: l.category,
                  categoryGroup: null,
                  enabled: l.enabled,
                  retentionPolicy: { enabled: false, days: 0 },
                })),
                metrics: [],
                logAnalyticsDestinationType: null,
              },
            };
          }),
        };
      };
      if (applyFault(res, await takeFault(info), settings)) return;
      if (!knownSubscription(res, sub)) return;
      if (!findCluster(clusterPath)) {
        sendError(res, 404, 'ResourceNotFound', `The Resource '${clusterPath}' was not found.`);
        return;
      }
      sendJson(res, 200, settings());
      return;
    }

    if (account) {
      const [, sub, rg, name] = account as unknown as [string, string, string, string];
      const found = () => storageAccounts.get(storageAccountId(sub, rg, name).toLowerCase());
      if (applyFault(res, await takeFault(info), () => found() ?? {})) return;
      const resource = found();
      if (resource) {
        sendJson(res, 200, resource);
        return;
      }
      if (!storageSubscriptions.has(sub.toLowerCase()) && !subscriptions.has(sub.toLowerCase())) {
        sendError(res, 404, 'SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
        return;
      }
      sendError(
        res,
        404,
        'ResourceNotFound',
        `The Resource 'Microsoft.Storage/storageAccounts/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
      );
      return;
    }

    if (credential) {
      const [, clusterPath] = credential as unknown as [string, string];
      const kubeconfig = () => userCredentials.get(clusterPath.toLowerCase());
      const answer = (yaml: string) => ({
        kubeconfigs: [{ name: 'clusterUser', value: Buffer.from(yaml, 'utf8').toString('base64') }],
      });
      if (applyFault(res, await takeFault(info), () => answer(kubeconfig() ?? ''))) return;
      const yaml = kubeconfig();
      if (yaml === undefined) {
        sendError(res, 404, 'ResourceNotFound', `The Resource '${clusterPath}' was not found.`);
        return;
      }
      sendJson(res, 200, answer(yaml));
      return;
    }

    sendError(res, 404, 'NotFound', `The fake does not serve '${path}'.`);
  };

  const server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    const at = Date.now();
    const t0 = performance.now();
    const info: RequestContext = { operation: 'unknown' };
    res.once('close', () => {
      log.record({
        cloud: 'azure',
        operation: info.operation,
        ...(info.scope === undefined ? {} : { scope: info.scope }),
        at,
        durationMs: performance.now() - t0,
        ...(res.headersSent ? { status: res.statusCode } : {}),
        ...(info.fault === undefined ? {} : { fault: info.fault }),
      });
    });
    handle(req, res, info).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'InternalServerError', String(error));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the ARM fake did not get a port');
  endpoint = `https://127.0.0.1:${address.port}`;

  return {
    endpoint,
    caFile: cert.caFile,
    ca: cert.ca,
    log,
    setClusters(subscriptionId, clusters) {
      subscriptions.set(subscriptionId.toLowerCase(), [...clusters]);
    },
    setDiagnosticSettings(clusterId, settings) {
      diagnostics.set(clusterId.toLowerCase(), [...settings]);
    },
    setStorageAccount(subscriptionId, resourceGroup, name, spec) {
      const resource = storageAccount(subscriptionId, resourceGroup, name, spec);
      storageAccounts.set(resource.id.toLowerCase(), resource);
      storageSubscriptions.add(subscriptionId.toLowerCase());
      return resource;
    },
    setUserCredentials(clusterId, kubeconfigYaml) {
      userCredentials.set(clusterId.toLowerCase(), kubeconfigYaml);
    },
    requests(filter = {}) {
      return log.entries.filter(
        (e) =>
          e.cloud === 'azure' &&
          (filter.operation === undefined || e.operation === filter.operation) &&
          (filter.scope === undefined || e.scope === filter.scope),
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
