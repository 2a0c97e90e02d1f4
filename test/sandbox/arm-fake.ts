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
 * - `GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{account}/blobServices/default/containers/{container}`
 *   (operation `blobContainers.get`): a BlobContainer from `setBlobContainer`, with its version-level
 *   immutability (`immutableStorageWithVersioning`) and default version-level policy (`immutabilityPolicy`);
 *   an unknown container answers 404 `ContainerNotFound`, an unknown account 404 `ResourceNotFound`.
 *
 * - `PATCH /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}`
 *   with `{ tags }` (operation `managedClusters.updateTags`, what `managedClusters.beginUpdateTags` sends):
 *   the body's tags REPLACE the cluster's tags (callers merge themselves); a body without `tags` leaves
 *   them as they are. Optimistic concurrency as the REST reference documents it (ManagedCluster
 *   `eTag`, `If-Match` header): an `If-Match` that is not the cluster's current `eTag` answers 412
 *   `PreconditionFailed` and changes nothing; every tag change (a PATCH or `setClusterTags`) gives the
 *   cluster a new `eTag`. `onClusterWrite` runs just before a PATCH is applied (a concurrent writer). Tag rules as ARM documents them (see `validateArmTags`). The answer is ARM's
 *   synchronous form of a long-running PATCH: 200 with the updated ManagedCluster and no
 *   `Azure-AsyncOperation` / `Location` header, so the SDK poller finishes at once on the body's
 *   `provisioningState` (a cluster whose state is not terminal, e.g. `Updating`, would make the
 *   poller GET the cluster until it is; keep such clusters out of tag tests).
 * - Consumption budgets (`Microsoft.Consumption/budgets`) at subscription scope
 *   `/subscriptions/{sub}/providers/Microsoft.Consumption/budgets[/{name}]` and resource-group scope
 *   `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Consumption/budgets[/{name}]`:
 *   `PUT` (operation `budgets.createOrUpdate`: 201 on create, 200 on update; a body `eTag` that differs
 *   from the stored one answers 412 `PreconditionFailed`; a start date not on the first day of a month,
 *   and other invalid bodies, answer 400 `BadRequest`), `GET` (`budgets.get`, 404 `NotFound`), `DELETE`
 *   (`budgets.delete`: 200, or 204 when there is no such budget) and `GET` of the collection
 *   (`budgets.list`, only the budgets of exactly that scope, paged by `nextLink`). `currentSpend` is in
 *   the subscription's billing currency (`setBillingCurrency`, default USD) and its amount comes from
 *   `setScopeSpend` (default 0). Budget calls accept any subscription.
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
import { deniedMessage } from './request-log.ts';
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
  /** Where the logs go: a storage account's ARM id (export mode's destination). */
  storageAccountId?: string | null;
  /** A Log Analytics workspace's ARM id; default the sandbox's workspace unless `storageAccountId` is given. */
  workspaceId?: string | null;
}

/** At most this many diagnostic settings per resource, as Azure Monitor allows. */
export const MAX_DIAGNOSTIC_SETTINGS = 5;

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
    eTag: `"${createHash('sha256').update(`${id}/etag`).digest('hex').slice(0, 16)}"`,
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

/** Inputs of `setBlobContainer`. */
export interface BlobContainerSpec {
  /** Version-level immutability (`immutableStorageWithVersioning.enabled`). */
  versionImmutability: boolean;
  /** The default immutability policy's `immutabilityPeriodSinceCreationInDays`; without it the container has no policy. */
  policyDays?: number;
  /** Whether that policy is `Locked` (default `Unlocked`). */
  locked?: boolean;
  /** The policy's `allowProtectedAppendWrites` (append blobs may grow; Azure Monitor's diagnostic logs need it). */
  allowProtectedAppendWrites?: boolean;
  /** ISO 8601 (default 2025-01-15T09:45:00Z). */
  modifiedAt?: string;
}

/** A BlobContainer resource as ARM serialises it (the reference example "GetContainers"). */
export type ArmBlobContainer = {
  id: string;
  name: string;
  type: 'Microsoft.Storage/storageAccounts/blobServices/containers';
  etag: string;
  properties: {
    immutableStorageWithVersioning: { enabled: boolean; timeStamp?: string; migrationState?: string };
    immutabilityPolicy?: {
      immutabilityPeriodSinceCreationInDays: number;
      state: 'Locked' | 'Unlocked';
      allowProtectedAppendWrites: boolean;
      allowProtectedAppendWritesAll: boolean;
      etag: string;
      updateHistory?: {
        update: 'put' | 'lock' | 'extend';
        immutabilityPeriodSinceCreationInDays: number;
        timestamp: string;
        objectIdentifier: string;
        tenantId: string;
        upn: string;
        allowProtectedAppendWrites: boolean;
        allowProtectedAppendWritesAll: boolean;
      }[];
    };
    hasImmutabilityPolicy: boolean;
    hasLegalHold: boolean;
    publicAccess: 'None' | 'Blob' | 'Container';
    lastModifiedTime: string;
    [key: string]: unknown;
  };
};

/** The ARM id of a blob container. */
export function blobContainerId(
  subscriptionId: string,
  resourceGroup: string,
  account: string,
  container: string,
): string {
  return `${storageAccountId(subscriptionId, resourceGroup, account)}/blobServices/default/containers/${container}`;
}

/** Builds a BlobContainer in ARM's wire shape. */
export function blobContainer(
  subscriptionId: string,
  resourceGroup: string,
  account: string,
  container: string,
  spec: BlobContainerSpec,
): ArmBlobContainer {
  const modified = spec.modifiedAt ?? '2025-01-15T09:45:00.0000000Z';
  const etag = `"0x8D${createHash('sha256').update(`${account}/${container}/${modified}`).digest('hex').slice(0, 13).toUpperCase()}"`;
  const days = spec.policyDays;
  const state = spec.locked ? 'Locked' : 'Unlocked';
  const history = (update: 'put' | 'lock') => ({
    update,
    immutabilityPeriodSinceCreationInDays: days ?? 0,
    timestamp: modified,
    objectIdentifier: '00000000-0000-0000-0000-0000000000a1',
    tenantId: '00000000-0000-0000-0000-0000000000b2',
    upn: 'evidence-admin@contoso.example',
    allowProtectedAppendWrites: false,
    allowProtectedAppendWritesAll: false,
  });
  return {
    id: blobContainerId(subscriptionId, resourceGroup, account, container),
    name: container,
    type: 'Microsoft.Storage/storageAccounts/blobServices/containers',
    etag,
    properties: {
      deleted: false,
      remainingRetentionDays: 0,
      defaultEncryptionScope: '$account-encryption-key',
      denyEncryptionScopeOverride: false,
      publicAccess: 'None',
      leaseStatus: 'Unlocked',
      leaseState: 'Available',
      lastModifiedTime: modified,
      immutableStorageWithVersioning: spec.versionImmutability
        ? { enabled: true, timeStamp: modified, migrationState: 'Completed' }
        : { enabled: false },
      ...(days === undefined
        ? {}
        : {
            immutabilityPolicy: {
              immutabilityPeriodSinceCreationInDays: days,
              state,
              allowProtectedAppendWrites: spec.allowProtectedAppendWrites === true,
              allowProtectedAppendWritesAll: false,
              etag,
              updateHistory: spec.locked ? [history('put'), history('lock')] : [history('put')],
            },
          }),
      hasImmutabilityPolicy: days !== undefined,
      hasLegalHold: false,
      legalHold: { hasLegalHold: false, tags: [] },
    },
  };
}

// --- tags ---

/** ARM's documented tag limits ("Use tags to organize your Azure resources", Limitations). */
export const ARM_TAG_LIMITS = {
  maxTags: 50,
  maxNameLength: 512,
  maxValueLength: 256,
  /** Characters a tag name may not contain. */
  reservedNameCharacters: ['<', '>', '%', '&', '\\', '?', '/'],
} as const;

/** An ARM error (`{ error: { code, message } }`) with its HTTP status. */
export interface ArmError {
  status: number;
  code: string;
  message: string;
}

/**
 * Checks tags the way ARM does on a write; returns the error ARM answers, or undefined.
 * Codes: `InvalidRequestContent` (not an object of strings, or two names equal but for case, since tag
 * names are case-insensitive), `TooManyTags` (more than 50), `InvalidTagNameLength` (> 512),
 * `InvalidTagValueLength` (> 256), `InvalidTagNameCharacters` (one of `<>%&\?/` or a control character).
 */
export function validateArmTags(tags: unknown): ArmError | undefined {
  const bad = (code: string, message: string): ArmError => ({ status: 400, code, message });
  if (!isPlainObject(tags)) return bad('InvalidRequestContent', "The property 'tags' must be an object.");
  const entries = Object.entries(tags);
  const notString = entries.find(([, v]) => typeof v !== 'string');
  if (notString) return bad('InvalidRequestContent', `The value of tag '${notString[0]}' must be a string.`);
  if (entries.length > ARM_TAG_LIMITS.maxTags)
    return bad(
      'TooManyTags',
      `The resource has ${entries.length} tags; at most ${ARM_TAG_LIMITS.maxTags} tags are allowed.`,
    );
  const seen = new Map<string, string>();
  for (const [name, value] of entries as [string, string][]) {
    if (name.length > ARM_TAG_LIMITS.maxNameLength)
      return bad(
        'InvalidTagNameLength',
        `The tag name '${name.slice(0, 32)}...' exceeds the maximum length of '${ARM_TAG_LIMITS.maxNameLength}' characters.`,
      );
    if (value.length > ARM_TAG_LIMITS.maxValueLength)
      return bad(
        'InvalidTagValueLength',
        `The value of tag '${name}' exceeds the maximum length of '${ARM_TAG_LIMITS.maxValueLength}' characters.`,
      );
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what ARM refuses.
    if (/[<>%&\\?/\u0000-\u001f\u007f]/.test(name))
      return bad(
        'InvalidTagNameCharacters',
        `The tag names '${name}' have reserved characters '<,>,%,&,\\,?,/' or control characters.`,
      );
    const other = seen.get(name.toLowerCase());
    if (other !== undefined)
      return bad(
        'InvalidRequestContent',
        `The tag names '${other}' and '${name}' differ only in case; tag names are case-insensitive.`,
      );
    seen.set(name.toLowerCase(), name);
  }
  return undefined;
}

// --- consumption budgets ---

/** The api-version `@azure/arm-consumption` 9 sends (the fake accepts any). */
export const CONSUMPTION_API_VERSION = '2021-10-01';

/** One comparison of a budget filter (`dimensions` or `tags`). */
export interface ArmBudgetComparison {
  name: string;
  operator: 'In' | (string & {});
  values: string[];
}

/** A budget notification, keyed by a name of the caller's choice in `properties.notifications`. */
export interface ArmBudgetNotification {
  enabled: boolean;
  operator: 'EqualTo' | 'GreaterThan' | 'GreaterThanOrEqualTo' | (string & {});
  threshold: number;
  contactEmails: string[];
  contactRoles?: string[];
  /** Action group ARM ids. */
  contactGroups?: string[];
  thresholdType?: 'Actual' | 'Forecasted' | (string & {});
  locale?: string;
}

/** `properties` of a Budget as ARM serialises them. */
export interface ArmBudgetProperties {
  category: 'Cost' | (string & {});
  amount: number;
  timeGrain: string;
  timePeriod: { startDate: string; endDate?: string };
  filter?: {
    and?: { dimensions?: ArmBudgetComparison; tags?: ArmBudgetComparison }[];
    not?: { dimensions?: ArmBudgetComparison; tags?: ArmBudgetComparison };
    dimensions?: ArmBudgetComparison;
    tags?: ArmBudgetComparison;
  };
  notifications?: Record<string, ArmBudgetNotification>;
  currentSpend?: { amount: number; unit: string };
  forecastSpend?: { amount: number; unit: string };
  [key: string]: unknown;
}

/** A Budget resource as ARM serialises it. */
export interface ArmBudget {
  id: string;
  name: string;
  type: 'Microsoft.Consumption/budgets';
  eTag: string;
  properties: ArmBudgetProperties;
}

/** What `setScopeSpend` takes: the cost of the current period so far, and optionally a forecast. */
export interface BudgetSpend {
  current: number;
  forecast?: number;
}

const BUDGET_TIME_GRAINS = [
  'Monthly',
  'Quarterly',
  'Annually',
  'BillingMonth',
  'BillingQuarter',
  'BillingAnnual',
];
const BUDGET_OPERATORS = ['EqualTo', 'GreaterThan', 'GreaterThanOrEqualTo'];
const BUDGET_THRESHOLD_TYPES = ['Actual', 'Forecasted'];

/** Canonical budget scope: `/subscriptions/{sub}` or `/subscriptions/{sub}/resourceGroups/{rg}`. */
export function budgetScope(subscriptionId: string, resourceGroup?: string): string {
  return resourceGroup === undefined
    ? `/subscriptions/${subscriptionId}`
    : `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
}

/** The ARM id of a budget at a scope (as `budgetScope` gives it, with or without the leading slash). */
export function budgetId(scope: string, name: string): string {
  return `/${scope.replace(/^\/+|\/+$/g, '')}/providers/Microsoft.Consumption/budgets/${name}`;
}

/** Checks a Budget PUT body the way the Consumption RP does; returns the 400 it answers, or undefined. */
export function validateBudgetBody(body: unknown): ArmError | undefined {
  const bad = (message: string): ArmError => ({ status: 400, code: 'BadRequest', message });
  if (!isPlainObject(body) || !isPlainObject(body.properties))
    return bad("The request body must be a Budget with 'properties'.");
  if (body.eTag !== undefined && typeof body.eTag !== 'string') return bad("'eTag' must be a string.");
  const p = body.properties;
  if (p.category !== 'Cost')
    return bad(`Budget category '${String(p.category)}' is not supported; use 'Cost'.`);
  if (typeof p.amount !== 'number' || !Number.isFinite(p.amount) || p.amount <= 0)
    return bad('Budget amount must be a number greater than 0.');
  if (typeof p.timeGrain !== 'string' || !BUDGET_TIME_GRAINS.includes(p.timeGrain))
    return bad(
      `Budget time grain '${String(p.timeGrain)}' is not valid; use one of ${BUDGET_TIME_GRAINS.join(', ')}.`,
    );
  const period = p.timePeriod;
  if (!isPlainObject(period) || typeof period.startDate !== 'string')
    return bad("Budget 'timePeriod.startDate' is required.");
  const start = Date.parse(period.startDate);
  const day = /^\d{4}-\d{2}-(\d{2})/.exec(period.startDate)?.[1];
  if (Number.isNaN(start) || day === undefined)
    return bad(`Budget start date '${period.startDate}' is not a date.`);
  if (day !== '01')
    return bad(
      `The start date '${period.startDate}' of the budget must be the first day of a month and before the end date.`,
    );
  if (period.endDate !== undefined) {
    const end = typeof period.endDate === 'string' ? Date.parse(period.endDate) : Number.NaN;
    if (Number.isNaN(end) || end <= start)
      return bad(`Budget end date '${String(period.endDate)}' must be a date after the start date.`);
  }
  if (p.notifications !== undefined) {
    if (!isPlainObject(p.notifications)) return bad("Budget 'notifications' must be an object.");
    const entries = Object.entries(p.notifications);
    if (entries.length > 5) return bad('A budget can have at most 5 notifications.');
    for (const [key, n] of entries) {
      if (!isPlainObject(n)) return bad(`Notification '${key}' must be an object.`);
      if (typeof n.enabled !== 'boolean') return bad(`Notification '${key}': 'enabled' is required.`);
      if (typeof n.operator !== 'string' || !BUDGET_OPERATORS.includes(n.operator))
        return bad(`Notification '${key}': operator '${String(n.operator)}' is not valid.`);
      if (typeof n.threshold !== 'number' || n.threshold <= 0 || n.threshold > 1000)
        return bad(`Notification '${key}': threshold must be greater than 0 and at most 1000.`);
      if (!Array.isArray(n.contactEmails)) return bad(`Notification '${key}': 'contactEmails' is required.`);
      if (n.contactEmails.length > 50) return bad(`Notification '${key}': at most 50 contact emails.`);
      if (n.thresholdType !== undefined && !BUDGET_THRESHOLD_TYPES.includes(String(n.thresholdType)))
        return bad(`Notification '${key}': thresholdType '${String(n.thresholdType)}' is not valid.`);
    }
  }
  return undefined;
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
  /**
   * Test hook run when a tag PATCH of a cluster arrives, before its `If-Match` is checked and
   * it is applied: where another writer gets in between a client's read and its write.
   */
  onClusterWrite?: (cluster: ArmManagedCluster) => void;
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
  /** The diagnostic settings of a cluster (by ARM id), as stored (test hook: Azure Monitor's delivery reads them). */
  diagnosticSettings(clusterId: string): DiagnosticSettingInput[];
  /** Creates or replaces a storage account (and makes its subscription known to storage calls); returns the resource. */
  setStorageAccount(
    subscriptionId: string,
    resourceGroup: string,
    name: string,
    spec: StorageAccountSpec,
  ): ArmStorageAccount;
  /**
   * Creates or replaces a blob container of a storage account (`blobContainers.get`); the account
   * should be set with `setStorageAccount` too. Returns the resource.
   */
  setBlobContainer(
    subscriptionId: string,
    resourceGroup: string,
    account: string,
    container: string,
    spec: BlobContainerSpec,
  ): ArmBlobContainer;
  /** The kubeconfig `listClusterUserCredential` answers for a cluster (by ARM id); without one it answers 404. */
  setUserCredentials(clusterId: string, kubeconfigYaml: string): void;
  /**
   * Test hook: replaces a cluster's tags behind the clients' backs (as another writer would), without a
   * request. Throws for an unknown cluster id. Returns the updated cluster.
   */
  setClusterTags(clusterId: string, tags: Record<string, string>): ArmManagedCluster;
  /** The ISO 4217 billing currency of a subscription (default `USD`); budgets report spend in it. */
  setBillingCurrency(subscriptionId: string, currency: string): void;
  /** The spend budgets at a scope (`budgetScope(...)`, case-insensitive) report (default 0, no forecast). */
  setScopeSpend(scope: string, spend: BudgetSpend): void;
  /** Requests seen so far, optionally only one operation and/or scope. */
  requests(filter?: { operation?: string; scope?: string }): RequestInfo[];
  /** Closes every connection (answering held requests by dropping them) and the server. */
  stop(): Promise<void>;
}

/** A budget as the fake keeps it (spend is added when it is answered). */
interface StoredBudget {
  id: string;
  name: string;
  /** Canonical scope, e.g. `/subscriptions/{sub}/resourceGroups/{rg}`. */
  scope: string;
  eTag: string;
  properties: ArmBudgetProperties;
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
const BLOB_CONTAINER_PATH =
  /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/microsoft\.storage\/storageaccounts\/([^/]+)\/blobservices\/default\/containers\/([^/]+)\/?$/i;
const USER_CREDENTIAL_PATH =
  /^(\/subscriptions\/([^/]+)\/resourcegroups\/[^/]+\/providers\/microsoft\.containerservice\/managedclusters\/[^/]+)\/listclusterusercredential\/?$/i;
const DIAGNOSTIC_SETTING_PATH =
  /^(\/subscriptions\/([^/]+)\/resourcegroups\/[^/]+\/providers\/microsoft\.containerservice\/managedclusters\/[^/]+)\/providers\/microsoft\.insights\/diagnosticsettings\/([^/]+)\/?$/i;
const DIAGNOSTICS_PATH =
  /^(\/subscriptions\/([^/]+)\/resourcegroups\/[^/]+\/providers\/microsoft\.containerservice\/managedclusters\/[^/]+)\/providers\/microsoft\.insights\/diagnosticsettings\/?$/i;

const BUDGETS_PATH =
  /^\/+(subscriptions\/([^/]+)(?:\/resourcegroups\/([^/]+))?)\/providers\/microsoft\.consumption\/budgets\/?$/i;
const BUDGET_PATH =
  /^\/+(subscriptions\/([^/]+)(?:\/resourcegroups\/([^/]+))?)\/providers\/microsoft\.consumption\/budgets\/([^/]+)\/?$/i;

/** Reads a request body as JSON: `undefined` for an empty body, an `Error` when it is not JSON. */
/**
 * A diagnostic setting in ARM's wire shape (the REST reference's "Gets the diagnostic setting"
 * example): a storage account, a workspace, or both as destinations.
 */
function diagnosticSettingView(clusterId: string, sub: string, s: DiagnosticSettingInput, i: number) {
  const name = s.name ?? `aks-diagnostics-${i + 1}`;
  const workspaceId =
    s.workspaceId !== undefined
      ? s.workspaceId
      : s.storageAccountId
        ? null
        : `/subscriptions/${sub}/resourceGroups/rg-monitoring/providers/Microsoft.OperationalInsights/workspaces/law-fleet`;
  return {
    id: `${clusterId}/providers/microsoft.insights/diagnosticSettings/${name}`,
    type: 'Microsoft.Insights/diagnosticSettings',
    name,
    properties: {
      ...(s.storageAccountId ? { storageAccountId: s.storageAccountId } : {}),
      ...(workspaceId ? { workspaceId } : {}),
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
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

const ERROR_CODES: Record<number, string> = {
  400: 'BadRequest',
  401: 'AuthenticationFailed',
  403: 'AuthorizationFailed',
  404: 'NotFound',
  408: 'RequestTimeout',
  409: 'Conflict',
  412: 'PreconditionFailed',
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
  /** Blob containers by lower-cased ARM id. */
  const blobContainers = new Map<string, ArmBlobContainer>();
  /** Kubeconfig YAML by lower-cased cluster ARM id. */
  const userCredentials = new Map<string, string>();
  /** Budgets by lower-cased `budgetId`, in creation order. */
  const budgetStore = new Map<string, StoredBudget>();
  /** Billing currency by lower-cased subscription id. */
  const currencies = new Map<string, string>();
  /** Spend by lower-cased scope. */
  const spends = new Map<string, BudgetSpend>();
  let eTagCounter = 0;
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
      case 'deny':
        sendError(res, 403, 'AuthorizationFailed', fault.message ?? 'authorization failed');
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
    return fault?.kind === 'deny'
      ? {
          ...fault,
          message: deniedMessage({
            cloud: 'azure',
            operation: info.operation,
            ...(info.scope ? { scope: info.scope } : {}),
          }),
        }
      : fault;
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

  /** Replaces the tags of a stored cluster (a new object, so callers' inputs are never mutated). */
  const replaceClusterTags = (clusterId: string, tags: Record<string, string>): ArmManagedCluster => {
    const wanted = clusterId.toLowerCase();
    for (const clusters of subscriptions.values()) {
      const index = clusters.findIndex((c) => typeof c.id === 'string' && c.id.toLowerCase() === wanted);
      const current = clusters[index];
      if (!current) continue;
      const now = new Date().toISOString();
      eTagCounter += 1;
      const updated = {
        ...current,
        tags: { ...tags },
        eTag: `"${createHash('sha256').update(`${current.id}/${eTagCounter}/${now}`).digest('hex').slice(0, 16)}"`,
        ...(current.systemData ? { systemData: { ...current.systemData, lastModifiedAt: now } } : {}),
      } as ArmManagedCluster;
      clusters[index] = updated;
      return updated;
    }
    throw new RangeError(`no cluster ${clusterId} in the ARM fake`);
  };

  const budgetKey = (scope: string, name: string) => budgetId(scope, name).toLowerCase();
  const budgetsAt = (scope: string) => {
    const prefix = `${budgetId(scope, '').toLowerCase()}`;
    return [...budgetStore.entries()]
      .filter(([key]) => key.startsWith(prefix) && !key.slice(prefix.length).includes('/'))
      .map(([, b]) => b);
  };
  const nextETag = () => {
    eTagCounter += 1;
    return `"1d${(Date.now() * 16 + eTagCounter).toString(16).slice(-13).padStart(13, '0')}"`;
  };
  const budgetView = (b: StoredBudget, sub: string): ArmBudget => {
    const unit = currencies.get(sub.toLowerCase()) ?? 'USD';
    const spend = spends.get(b.scope.toLowerCase());
    return {
      id: b.id,
      name: b.name,
      type: 'Microsoft.Consumption/budgets',
      eTag: b.eTag,
      properties: {
        ...b.properties,
        currentSpend: { amount: spend?.current ?? 0, unit },
        ...(spend?.forecast === undefined ? {} : { forecastSpend: { amount: spend.forecast, unit } }),
      },
    };
  };
  const budgetViewOrEmpty = (b: StoredBudget | undefined, sub: string) => (b ? budgetView(b, sub) : {});

  const handle = async (req: IncomingMessage, res: ServerResponse, info: RequestContext) => {
    const url = new URL(req.url ?? '/', endpoint);
    const path = url.pathname;
    const list = CLUSTERS_PATH.exec(path);
    const get = list ? null : CLUSTER_PATH.exec(path);
    const diagOne = list || get ? null : DIAGNOSTIC_SETTING_PATH.exec(path);
    const diag = list || get || diagOne ? null : DIAGNOSTICS_PATH.exec(path);
    const account = list || get || diag || diagOne ? null : STORAGE_ACCOUNT_PATH.exec(path);
    const container = list || get || diag || account ? null : BLOB_CONTAINER_PATH.exec(path);
    const credential = list || get || diag || account || container ? null : USER_CREDENTIAL_PATH.exec(path);
    const budgets =
      list || get || diag || account || container || credential ? null : BUDGETS_PATH.exec(path);
    const budget =
      list || get || diag || account || container || credential || budgets ? null : BUDGET_PATH.exec(path);
    const patch = get !== null && req.method === 'PATCH';
    const budgetOperation = ({ PUT: 'createOrUpdate', DELETE: 'delete' } as Record<string, string>)[
      req.method ?? ''
    ];
    // Name the request first, so even a refused one is logged with its operation and scope.
    if (list) Object.assign(info, { operation: 'managedClusters.list', scope: list[1] });
    else if (get)
      Object.assign(info, {
        operation: patch ? 'managedClusters.updateTags' : 'managedClusters.get',
        scope: get[1],
      });
    else if (budgets) Object.assign(info, { operation: 'budgets.list', scope: budgets[2] });
    else if (budget)
      Object.assign(info, { operation: `budgets.${budgetOperation ?? 'get'}`, scope: budget[2] });
    else if (diag) Object.assign(info, { operation: 'diagnosticSettings.list', scope: diag[2] });
    else if (diagOne)
      Object.assign(info, {
        operation: req.method === 'PUT' ? 'diagnosticSettings.createOrUpdate' : 'diagnosticSettings.get',
        scope: diagOne[2],
      });
    else if (account) Object.assign(info, { operation: 'storageAccounts.getProperties', scope: account[1] });
    else if (container) Object.assign(info, { operation: 'blobContainers.get', scope: container[1] });
    else if (credential)
      Object.assign(info, { operation: 'managedClusters.listClusterUserCredentials', scope: credential[2] });

    const methods = credential
      ? ['POST']
      : get
        ? ['GET', 'PATCH']
        : budget
          ? ['GET', 'PUT', 'DELETE']
          : diagOne
            ? ['GET', 'PUT']
            : ['GET'];
    if (!methods.includes(req.method ?? '')) {
      sendError(
        res,
        405,
        'MethodNotAllowed',
        `The fake answers ${methods.join(', ')} here, not ${req.method}.`,
      );
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

    if (get && patch) {
      const [, sub, rg, name] = get as unknown as [string, string, string, string];
      const body = await readJson(req);
      const found = () => findCluster(managedClusterId(sub, rg, name));
      if (applyFault(res, await takeFault(info), () => found() ?? {})) return;
      if (!knownSubscription(res, sub)) return;
      if (body instanceof Error || !isPlainObject(body)) {
        sendError(
          res,
          400,
          'InvalidRequestContent',
          `The request content was invalid and could not be deserialized: ${body instanceof Error ? body.message : 'expected a TagsObject'}.`,
        );
        return;
      }
      const invalid = body.tags === undefined ? undefined : validateArmTags(body.tags);
      if (invalid) {
        sendError(res, invalid.status, invalid.code, invalid.message);
        return;
      }
      const existing = found();
      if (existing?.id) options.onClusterWrite?.(existing as ArmManagedCluster);
      const cluster = found();
      if (!cluster?.id) {
        sendError(
          res,
          404,
          'ResourceNotFound',
          `The Resource 'Microsoft.ContainerService/managedClusters/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
        );
        return;
      }
      const ifMatch = req.headers['if-match'];
      if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== cluster.eTag) {
        sendError(
          res,
          412,
          'PreconditionFailed',
          `The condition specified using HTTP conditional header(s) is not met: If-Match ${ifMatch} is not the current eTag of managedCluster '${name}'.`,
        );
        return;
      }
      const updated =
        body.tags === undefined
          ? cluster
          : replaceClusterTags(cluster.id, body.tags as Record<string, string>);
      sendJson(res, 200, updated);
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
          `The Resource 'Microsoft.ContainerService/managedClusters/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
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
          value: (diagnostics.get(clusterPath.toLowerCase()) ?? []).map((s, i) =>
            diagnosticSettingView(canonical, sub, s, i),
          ),
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

    if (diagOne) {
      const [, clusterPath, sub, name] = diagOne as unknown as [string, string, string, string];
      const key = clusterPath.toLowerCase();
      const settings = () => diagnostics.get(key) ?? [];
      const index = () =>
        settings().findIndex(
          (s, i) => (s.name ?? `aks-diagnostics-${i + 1}`).toLowerCase() === name.toLowerCase(),
        );
      if (applyFault(res, await takeFault(info), () => ({}))) return;
      if (!knownSubscription(res, sub)) return;
      const cluster = findCluster(clusterPath);
      if (!cluster) {
        sendError(res, 404, 'ResourceNotFound', `The Resource '${clusterPath}' was not found.`);
        return;
      }
      if (req.method === 'GET') {
        const i = index();
        if (i < 0) {
          sendError(res, 404, 'ResourceNotFound', `The diagnostic setting '${name}' doesn't exist.`);
          return;
        }
        sendJson(res, 200, diagnosticSettingView(cluster.id ?? clusterPath, sub, settings()[i]!, i));
        return;
      }
      const body = (await readJson(req)) as {
        properties?: { logs?: unknown; storageAccountId?: unknown; workspaceId?: unknown };
      } | null;
      const p = body?.properties;
      const logs = Array.isArray(p?.logs)
        ? (p.logs as { category?: unknown; enabled?: unknown }[])
        : undefined;
      const storage =
        typeof p?.storageAccountId === 'string' && p.storageAccountId !== '' ? p.storageAccountId : null;
      const workspace = typeof p?.workspaceId === 'string' && p.workspaceId !== '' ? p.workspaceId : null;
      if (!logs || logs.some((l) => typeof l?.category !== 'string' || typeof l.enabled !== 'boolean')) {
        sendError(res, 400, 'BadRequest', 'properties.logs must list { category, enabled } entries.');
        return;
      }
      if (!storage && !workspace) {
        sendError(res, 400, 'BadRequest', 'A diagnostic setting needs at least one destination.');
        return;
      }
      const i = index();
      if (i < 0 && settings().length >= MAX_DIAGNOSTIC_SETTINGS) {
        sendError(
          res,
          400,
          'BadRequest',
          `Maximum number of diagnostic settings (${MAX_DIAGNOSTIC_SETTINGS}) reached for this resource.`,
        );
        return;
      }
      const input: DiagnosticSettingInput = {
        name,
        logs: logs.map((l) => ({ category: l.category as string, enabled: l.enabled as boolean })),
        storageAccountId: storage,
        workspaceId: workspace,
      };
      const next = [...settings()];
      if (i < 0) next.push(input);
      else next[i] = input;
      diagnostics.set(key, next);
      sendJson(
        res,
        200,
        diagnosticSettingView(cluster.id ?? clusterPath, sub, input, i < 0 ? next.length - 1 : i),
      );
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

    if (container) {
      const [, sub, rg, name, containerName] = container as unknown as [
        string,
        string,
        string,
        string,
        string,
      ];
      const found = () => blobContainers.get(blobContainerId(sub, rg, name, containerName).toLowerCase());
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
      if (!storageAccounts.has(storageAccountId(sub, rg, name).toLowerCase())) {
        sendError(
          res,
          404,
          'ResourceNotFound',
          `The Resource 'Microsoft.Storage/storageAccounts/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
        );
        return;
      }
      sendError(res, 404, 'ContainerNotFound', 'The specified container does not exist.');
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

    if (budgets) {
      const [, rawScope, sub] = budgets as unknown as [string, string, string];
      const scope = `/${rawScope}`;
      const skipToken = url.searchParams.get('$skipToken') ?? url.searchParams.get('$skiptoken');
      const offset = skipToken === null ? 0 : decodeSkipToken(skipToken);
      const page = () => {
        const all = budgetsAt(scope).map((b) => budgetView(b, sub));
        const start = offset ?? 0;
        const value = all.slice(start, start + pageSize);
        const next = start + pageSize;
        if (next >= all.length) return { value };
        const link = new URL(path, endpoint);
        link.searchParams.set('api-version', apiVersion);
        link.searchParams.set('$skipToken', encodeSkipToken(next));
        return { value, nextLink: link.toString() };
      };
      if (applyFault(res, await takeFault(info), page)) return;
      if (offset === undefined) {
        sendError(res, 400, 'InvalidSkipToken', `The skip token '${skipToken}' is not valid.`);
        return;
      }
      sendJson(res, 200, page());
      return;
    }

    if (budget) {
      const [, rawScope, sub, , name] = budget as unknown as [string, string, string, string, string];
      const scope = `/${rawScope}`;
      const key = budgetKey(scope, name);
      const stored = () => budgetStore.get(key);
      const notFound = () =>
        sendError(res, 404, 'NotFound', `Budget '${name}' was not found at scope '${scope}'.`);
      if (req.method === 'GET') {
        if (applyFault(res, await takeFault(info), () => budgetViewOrEmpty(stored(), sub))) return;
        const found = stored();
        if (!found) {
          notFound();
          return;
        }
        sendJson(res, 200, budgetView(found, sub));
        return;
      }
      if (req.method === 'DELETE') {
        if (applyFault(res, await takeFault(info), () => ({}))) return;
        if (!budgetStore.delete(key)) {
          res.writeHead(204, { 'x-ms-request-id': randomUUID() });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-length': 0, 'x-ms-request-id': randomUUID() });
        res.end();
        return;
      }
      // PUT
      const body = await readJson(req);
      if (applyFault(res, await takeFault(info), () => budgetViewOrEmpty(stored(), sub))) return;
      if (body instanceof Error) {
        sendError(
          res,
          400,
          'InvalidRequestContent',
          `The request content was invalid and could not be deserialized: ${body.message}.`,
        );
        return;
      }
      const invalid = validateBudgetBody(body);
      if (invalid) {
        sendError(res, invalid.status, invalid.code, invalid.message);
        return;
      }
      const input = body as { eTag?: string; properties: ArmBudgetProperties };
      const existing = stored();
      if (existing && input.eTag !== undefined && input.eTag !== existing.eTag) {
        sendError(
          res,
          412,
          'PreconditionFailed',
          `The eTag ${input.eTag} of budget '${name}' does not match the current eTag ${existing.eTag}; get the budget and try again.`,
        );
        return;
      }
      const { currentSpend: _c, forecastSpend: _f, ...properties } = input.properties;
      if (properties.timePeriod.endDate === undefined) {
        // ARM: "If not provided, we default this to 10 years from the start date."
        const end = new Date(Date.parse(properties.timePeriod.startDate));
        end.setUTCFullYear(end.getUTCFullYear() + 10);
        properties.timePeriod = {
          ...properties.timePeriod,
          endDate: `${end.toISOString().slice(0, 19)}Z`,
        };
      }
      const record: StoredBudget = {
        id: existing?.id ?? budgetId(scope, name),
        name: existing?.name ?? name,
        scope: existing?.scope ?? scope,
        eTag: nextETag(),
        properties,
      };
      budgetStore.set(key, record);
      sendJson(res, existing ? 200 : 201, budgetView(record, sub));
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
    diagnosticSettings(clusterId) {
      return [...(diagnostics.get(clusterId.toLowerCase()) ?? [])];
    },
    setBlobContainer(subscriptionId, resourceGroup, account, container, spec) {
      const resource = blobContainer(subscriptionId, resourceGroup, account, container, spec);
      blobContainers.set(resource.id.toLowerCase(), resource);
      storageSubscriptions.add(subscriptionId.toLowerCase());
      return resource;
    },
    setUserCredentials(clusterId, kubeconfigYaml) {
      userCredentials.set(clusterId.toLowerCase(), kubeconfigYaml);
    },
    setClusterTags(clusterId, tags) {
      const invalid = validateArmTags(tags);
      if (invalid) throw new RangeError(`${invalid.code}: ${invalid.message}`);
      return replaceClusterTags(clusterId, tags);
    },
    setBillingCurrency(subscriptionId, currency) {
      if (!/^[A-Z]{3}$/.test(currency)) throw new RangeError(`not an ISO 4217 currency code: ${currency}`);
      currencies.set(subscriptionId.toLowerCase(), currency);
    },
    setScopeSpend(scope, spend) {
      spends.set(`/${scope.replace(/^\/+|\/+$/g, '')}`.toLowerCase(), { ...spend });
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
