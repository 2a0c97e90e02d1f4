/**
 * Discovery of AKS clusters: per subscription, Azure Resource Manager's
 * `managedClusters.list` (every page, following `nextLink`), which already returns each
 * ManagedCluster in full, so there are no per-cluster calls. Subscriptions run in
 * parallel; every ARM request of the adapter takes a slot of one FIFO limiter.
 *
 * Transport is `ContainerServiceClient` from `@azure/arm-containerservice` (the TypeSpec
 * generated client on `@azure-rest/core-client`). Its pipeline is configured here:
 * - retries are ours (`withRetry`, per page): the pipeline's default retry policy is switched
 *   off (`maxRetries: 0`) because it does not retry a 429 without `Retry-After` nor a request
 *   that hit its timeout, and so that `maxAttempts` means what it says. A page that failed is
 *   asked again by its `nextLink` (`byPage({ continuationToken })`), not from the first page.
 * - one policy of ours runs for every request, the `nextLink` pages included (the client
 *   sends those without the operation's options): it refuses any origin but the configured
 *   endpoint (a `nextLink` elsewhere would receive the bearer token), and it gives every
 *   attempt an abort signal of `timeoutMs` joined to the caller's signal. The signal, unlike
 *   the pipeline's `timeout` option, also covers reading the response body.
 * - `caFile` is trusted in addition to Node's default CAs (bundled roots, plus
 *   `NODE_EXTRA_CA_CERTS` and the system store when enabled) through the pipeline's
 *   `tlsOptions.ca`; that option replaces the defaults, so they are passed along.
 * - the token scope is `<endpoint origin>/.default` (`https://management.azure.com/.default`
 *   by default), as sovereign clouds expect.
 *
 * `describe` (one cluster, for a cloud event) is one `managedClusters.get(resourceGroup, name)`
 * through the same pipeline, retried the same way, and mapped like the list; ARM's 404
 * `ResourceNotFound` / `ResourceGroupNotFound` is `null`.
 */
import { readFileSync } from 'node:fs';
import { ContainerServiceClient, type ManagedCluster } from '@azure/arm-containerservice';
import type { AzureConfig } from '../../config/schema.ts';
import type { ClusterStatus, DiscoveredCluster, EndpointAccess } from '../../model.ts';
import type { ClusterDiscovery } from '../../ports.ts';
import { createLimiter, type Limiter } from '../../runtime/concurrency.ts';
import {
  CloudApiError,
  ConfigError,
  EndpointUnreachableError,
  errorInfo,
  FleetwardError,
  UnparseableClusterError,
} from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import { parseRetryAfter, type RetryDecision, withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { failedScope, mergeScopes, type ScopeResult } from '../outcome.ts';

const CLOUD = 'azure';
const OPERATION = 'managedClusters.list';
/** The service named in `cannot reach arm at <endpoint>: …`. */
export const SERVICE = 'arm';
/** How long a token of an `access-token` credential is taken to be valid (it is read again after). */
const ACCESS_TOKEN_LIFETIME_MS = 5 * 60_000;

type ClientOptions = NonNullable<ConstructorParameters<typeof ContainerServiceClient>[2]>;
/** `TokenCredential` of `@azure/core-auth`, as the client declares it. */
export type TokenCredential = ConstructorParameters<typeof ContainerServiceClient>[0];
type PipelinePolicy = NonNullable<ClientOptions['additionalPolicies']>[number]['policy'];

// --- errors and retry ---

/** The parts of a `RestError` of `@azure/core-rest-pipeline` we read (duck-typed: it is not our dependency). */
interface RestErrorLike extends Error {
  name: 'RestError';
  code?: string;
  statusCode?: number;
  request?: object;
  response?: { headers: { get(name: string): string | undefined } };
}

/** An ARM error body (`{"error":{"code","message"}}`). */
interface ArmError {
  code?: string;
  message?: string;
}

/**
 * ARM error bodies by request, noted by {@link requestPolicy}: the client's paging helper
 * raises its `RestError` with a generic message ("Pagination failed with unexpected
 * statusCode …") and drops the body, so the policy keeps what ARM said.
 */
const armErrors = new WeakMap<object, ArmError>();

function armErrorOf(bodyAsText: string | null | undefined): ArmError | undefined {
  if (!bodyAsText) return undefined;
  try {
    const body = JSON.parse(bodyAsText) as { error?: ArmError } | null;
    const error = body?.error;
    if (!error || typeof error !== 'object') return undefined;
    return {
      ...(typeof error.code === 'string' ? { code: error.code } : {}),
      ...(typeof error.message === 'string' ? { message: error.message } : {}),
    };
  } catch {
    return undefined;
  }
}

function isRestError(error: unknown): error is RestErrorLike {
  return error instanceof Error && error.name === 'RestError';
}

/** Network errors worth another attempt (the pipeline's own list plus a broken pipe). */
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
]);

function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Server-requested wait: `retry-after-ms` / `x-ms-retry-after-ms` (ARM) or `Retry-After`, in milliseconds. */
function retryAfterMs(error: RestErrorLike): number | undefined {
  const headers = error.response?.headers;
  if (!headers) return undefined;
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const ms = Number(headers.get(name));
    if (headers.get(name) && Number.isFinite(ms) && ms >= 0) return ms;
  }
  return parseRetryAfter(headers.get('retry-after'));
}

/** Whether an ARM call failure is worth another attempt (and after how long the server asked to wait). */
export function classify(error: unknown): RetryDecision {
  if (error instanceof CloudApiError) return { retry: error.retryable };
  if (!isRestError(error)) return { retry: false };
  if (error.code === 'PARSE_ERROR') return { retry: false };
  const status = error.statusCode;
  if (status !== undefined) return { retry: retryableStatus(status), afterMs: retryAfterMs(error) };
  return { retry: error.code !== undefined && RETRYABLE_NETWORK_CODES.has(error.code) };
}

function clip(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * Wraps an SDK, network or credential error once, where it enters; `what` names the call (default:
 * the subscription's list). A refused connection, failed DNS lookup, rejected certificate, timeout
 * or unparseable HTML answer of the pipeline to ARM at `endpoint` becomes `cannot reach arm at
 * <endpoint>: <reason>` (see `shared/runtime/network.ts`). Only the pipeline's `RestError`s are
 * classified: a credential's network failure is about its token endpoint, not ARM.
 */
function toCloudApiError(
  subscription: string,
  error: unknown,
  operation: string = OPERATION,
  what = `listing aks clusters of subscription ${subscription}`,
  endpoint?: string,
): CloudApiError {
  if (error instanceof CloudApiError) return error;
  if (endpoint !== undefined && isRestError(error)) {
    const down = unreachable(error, {
      cloud: CLOUD,
      operation,
      service: SERVICE,
      endpoint,
      status: error.statusCode,
    });
    if (down) return down;
  }
  const prefix = `${what} failed`;
  if (isRestError(error)) {
    if (error.code === 'PARSE_ERROR') {
      // The message of a parse error quotes the whole body; the failure says what matters.
      return new CloudApiError(
        `${prefix}: the response body is not valid JSON`,
        { cloud: CLOUD, operation, retryable: false },
        { cause: error },
      );
    }
    const status = error.statusCode;
    const arm = error.request ? armErrors.get(error.request) : undefined;
    const reason = [status, arm?.code ?? error.code].filter((p) => p !== undefined).join(' ');
    return new CloudApiError(
      `${prefix}${reason ? ` (${reason})` : ''}: ${clip(arm?.message ?? error.message)}`,
      { cloud: CLOUD, operation, status, retryable: classify(error).retry },
      { cause: error },
    );
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new CloudApiError(
    `${prefix}: ${clip(detail)}`,
    { cloud: CLOUD, operation, retryable: false },
    {
      cause: error,
    },
  );
}

// --- credentials ---

/** Where an `access-token` credential reads its token. */
export type AccessTokenSource = { env: string; file?: undefined } | { file: string; env?: undefined };

/**
 * A credential that returns the bearer token held in an environment variable or a file,
 * read at each call (so a refreshed token is picked up). For short-lived tokens such as
 * `az account get-access-token --query accessToken -o tsv`, and for the local sandbox.
 */
export function accessTokenCredential(
  source: AccessTokenSource,
  env: NodeJS.ProcessEnv = process.env,
): TokenCredential {
  const read = (): string => {
    if (source.env !== undefined) {
      const token = env[source.env]?.trim();
      if (!token) {
        throw new FleetwardError(
          `environment variable ${source.env} is not set or empty (azure credential type access-token reads the bearer token from it)`,
        );
      }
      return token;
    }
    let token: string;
    try {
      token = readFileSync(source.file, 'utf8').trim();
    } catch (error) {
      throw new FleetwardError(
        `cannot read the azure access token file ${source.file}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (!token) throw new FleetwardError(`the azure access token file ${source.file} is empty`);
    return token;
  };
  return {
    async getToken() {
      return { token: read(), expiresOnTimestamp: Date.now() + ACCESS_TOKEN_LIFETIME_MS };
    },
  };
}

/**
 * The credential a config asks for. `@azure/identity` (and MSAL with it) is imported only
 * for `default` and `workload-identity`, so an `access-token` run never loads it.
 */
export async function createCredential(credential: AzureConfig['credential']): Promise<TokenCredential> {
  switch (credential.type) {
    case 'access-token':
      if (credential.env !== undefined) return accessTokenCredential({ env: credential.env });
      if (credential.file !== undefined) return accessTokenCredential({ file: credential.file });
      throw new ConfigError([
        { path: 'clouds.azure.credential', message: 'expected exactly one of env or file' },
      ]);
    case 'default': {
      const { DefaultAzureCredential } = await import('@azure/identity');
      return new DefaultAzureCredential();
    }
    case 'workload-identity': {
      const { WorkloadIdentityCredential } = await import('@azure/identity');
      // Without tokenFile the credential reads AZURE_FEDERATED_TOKEN_FILE, as on AKS.
      return new WorkloadIdentityCredential({
        tenantId: credential.tenantId,
        clientId: credential.clientId,
        ...(credential.tokenFile === undefined ? {} : { tokenFilePath: credential.tokenFile }),
      });
    }
  }
}

// --- client options ---

export interface Connection {
  /** Endpoint without a trailing slash, as the client joins paths to it. */
  endpoint: string;
  origin: string;
  scope: string;
  ca: string[] | undefined;
}

/** Checks the endpoint and reads `caFile`, so a bad config fails at start-up, not per run. */
export function connectionOf(config: AzureConfig): Connection {
  let url: URL;
  try {
    url = new URL(config.endpoint);
  } catch {
    throw new ConfigError([
      { path: 'clouds.azure.endpoint', message: `expected an https URL, got "${config.endpoint}"` },
    ]);
  }
  if (url.protocol !== 'https:') {
    throw new ConfigError([
      { path: 'clouds.azure.endpoint', message: 'expected an https URL (ARM needs TLS for bearer tokens)' },
    ]);
  }
  let ca: string[] | undefined;
  if (config.caFile !== undefined) {
    try {
      // The configured CA is the trust anchor of the configured endpoint, and only of it.
      ca = [readFileSync(config.caFile, 'utf8')];
    } catch (error) {
      throw new ConfigError(
        [
          {
            path: 'clouds.azure.caFile',
            message: `cannot read ${config.caFile}: ${(error as Error).message}`,
          },
        ],
        undefined,
        { cause: error },
      );
    }
  }
  return {
    endpoint: `${url.origin}${url.pathname.replace(/\/+$/, '')}`,
    origin: url.origin,
    scope: `${url.origin}/.default`,
    ca,
  };
}

/**
 * The policy every request of a run passes: same-origin check, then a per-attempt deadline
 * joined to the caller's signal. A deadline that fires becomes a retryable `CloudApiError`
 * naming `operation` (default `managedClusters.list`). An answer that is an HTML page (a
 * proxy's or web server's, whatever its status) becomes `cannot reach arm at <endpoint>:
 * answered an html page, not the api`, before the client takes the page for an ARM answer.
 */
export function requestPolicy(
  connection: Connection,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  operation: string = OPERATION,
): PipelinePolicy {
  return {
    name: 'fleetwardRequestPolicy',
    async sendRequest(request, next) {
      if (new URL(request.url).origin !== connection.origin) {
        throw new CloudApiError(
          `refusing to send an azure request to ${new URL(request.url).origin}, outside the configured endpoint ${connection.origin}`,
          { cloud: CLOUD, operation, retryable: false },
        );
      }
      const deadline = AbortSignal.timeout(timeoutMs);
      const signals: AbortSignal[] = [deadline];
      if (signal) signals.push(signal);
      if (request.abortSignal instanceof AbortSignal) signals.push(request.abortSignal);
      request.abortSignal = AbortSignal.any(signals);
      try {
        const response = await next(request);
        const page = unreachable(undefined, {
          cloud: CLOUD,
          operation,
          service: SERVICE,
          endpoint: connection.endpoint,
          status: response.status,
          contentType: response.headers.get('content-type'),
        });
        if (page) throw page;
        if (response.status >= 400) {
          const arm = armErrorOf(response.bodyAsText);
          if (arm) armErrors.set(request, arm);
        }
        return response;
      } catch (error) {
        if (deadline.aborted && !signal?.aborted) {
          throw new CloudApiError(
            `azure request timed out after ${timeoutMs} ms`,
            { cloud: CLOUD, operation, retryable: true },
            { cause: error },
          );
        }
        throw error;
      }
    },
  };
}

/** `ContainerServiceClient` options: our retries only, `policy` on every request, the extra CA. */
export function clientOptions(connection: Connection, policy: PipelinePolicy): ClientOptions {
  return {
    endpoint: connection.endpoint,
    credentials: { scopes: [connection.scope] },
    retryOptions: { maxRetries: 0 },
    additionalPolicies: [{ policy, position: 'perCall' }],
    ...(connection.ca ? { tlsOptions: { ca: connection.ca } } : {}),
    userAgentOptions: { userAgentPrefix: 'fleetward' },
  };
}

// --- normalisation ---

const PROVISIONING_STATUS: Record<string, ClusterStatus> = {
  creating: 'provisioning',
  updating: 'updating',
  upgrading: 'updating',
  scaling: 'updating',
  migrating: 'updating',
  starting: 'updating',
  stopping: 'updating',
  rotatingclustercertificates: 'updating',
  deleting: 'deleting',
  failed: 'failed',
  canceled: 'degraded',
};

/**
 * Normalised status: `Succeeded` is `running`, unless the power state says `Stopped`
 * (a stopped cluster serves nothing: `degraded`); the other provisioning states map to
 * what they are doing; `Canceled` (an operation was cancelled half-way) is `degraded`.
 */
function statusOf(provisioningState: string | undefined, powerState: string | undefined): ClusterStatus {
  if (!provisioningState) return 'unknown';
  const state = provisioningState.toLowerCase();
  if (state === 'succeeded') return powerState?.toLowerCase() === 'stopped' ? 'degraded' : 'running';
  return PROVISIONING_STATUS[state] ?? 'unknown';
}

/**
 * Where the API server is reachable. A private cluster has no public API server, even when
 * it publishes a public FQDN (`enablePrivateClusterPublicFQDN`): that name resolves to the
 * private address. A public cluster with API server VNet integration answers both on its
 * public address and inside the VNet.
 */
function endpointAccessOf(cluster: ManagedCluster): EndpointAccess {
  const profile = cluster.apiServerAccessProfile;
  if (profile?.enablePrivateCluster) return 'private';
  if (profile?.enableVnetIntegration) return 'public-and-private';
  return 'public';
}

function text(value: string | null | undefined): string | null {
  return value ? value : null;
}

function isoTime(value: Date | string | undefined): string | null {
  if (value === undefined || value === null) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** ARM location as a region name: `West Europe` → `westeurope`. */
export function regionOf(location: string): string {
  return location.toLowerCase().replace(/\s+/g, '');
}

/** The resource group named in an ARM id (`/subscriptions/…/resourceGroups/<rg>/…`, any case). */
export function resourceGroupOf(id: string): string | undefined {
  return /\/resourcegroups\/([^/]+)/i.exec(id)?.[1];
}

/**
 * One ManagedCluster (as the client returns it: `properties` flattened, FQDN names in
 * camel case, `systemData` times as `Date`) as a {@link DiscoveredCluster}; throws
 * {@link UnparseableClusterError} when it has no id, name or location, or its id names no
 * resource group.
 *
 * - `endpoint` is `https://<fqdn>`, else `https://<privateFQDN>` (private clusters without a
 *   public name); see {@link endpointAccessOf} for `endpointAccess`.
 * - `secretsEncryptionKey` is the Key Vault key id of KMS etcd encryption when KMS is
 *   enabled; otherwise AKS encrypts etcd at rest with platform-managed keys: `null`.
 * - `auditLogging` is `null`: AKS sends control-plane audit logs (`kube-audit`,
 *   `kube-audit-admin`) only through a diagnostic setting on the cluster, a separate
 *   Microsoft.Insights resource that the ManagedCluster payload does not mention. Reading it
 *   costs one more ARM call per cluster, which discovery does not make (listing stays one
 *   call per page); the audit-logging control reads the diagnostic settings itself.
 * - `providerStatus` is `<provisioningState>/<powerState>` (either part alone when the other is absent).
 */
export function normaliseManagedCluster(subscriptionId: string, cluster: ManagedCluster): DiscoveredCluster {
  const { id, name, location } = cluster;
  if (!id || !name || !location) {
    const missing = [!id && 'id', !name && 'name', !location && 'location'].filter(Boolean).join(', ');
    throw new UnparseableClusterError(
      `aks managed cluster ${labelOf(cluster)} in subscription ${subscriptionId} has no ${missing}`,
    );
  }
  const resourceGroup = resourceGroupOf(id);
  if (!resourceGroup) {
    throw new UnparseableClusterError(
      `aks managed cluster "${name}" has an id without a resource group: ${id}`,
    );
  }
  const region = regionOf(location);
  const host = text(cluster.fqdn) ?? text(cluster.privateFqdn);
  const kms = cluster.securityProfile?.azureKeyVaultKms;
  const provisioningState = text(cluster.provisioningState) ?? undefined;
  const powerState = text(cluster.powerState?.code) ?? undefined;
  const providerStatus = [provisioningState, powerState].filter(Boolean).join('/');
  const tags: Record<string, string> = {};
  for (const [key, value] of Object.entries(cluster.tags ?? {})) tags[key] = String(value);
  return {
    // AKS names are unique per resource group, not per region: the id follows the ARM identity.
    id: `${CLOUD}/${subscriptionId}/${resourceGroup.toLowerCase()}/${name}`,
    cloud: CLOUD,
    scope: subscriptionId,
    region,
    name,
    kubernetesVersion: text(cluster.currentKubernetesVersion) ?? text(cluster.kubernetesVersion),
    endpoint: host ? `https://${host}` : null,
    endpointAccess: endpointAccessOf(cluster),
    secretsEncryptionKey: kms?.enabled ? text(kms.keyId) : null,
    auditLogging: null,
    tags,
    status: statusOf(provisioningState, powerState),
    providerStatus: providerStatus || null,
    createdAt: isoTime(cluster.systemData?.createdAt),
    resourceGroup,
  };
}

function labelOf(cluster: ManagedCluster): string {
  return `"${cluster.name || cluster.id || '(unnamed)'}"`;
}

// --- the adapter ---

interface Page {
  items: ManagedCluster[];
  next: string | undefined;
}

/**
 * The Azure adapter. Throws {@link ConfigError} at once for a non-https endpoint or an
 * unreadable `caFile`; the credential is made on the first run (and kept).
 */
export function createDiscovery(config: AzureConfig, ctx: AdapterContext): ClusterDiscovery {
  const connection = connectionOf(config);
  const limiter = createLimiter(config.concurrency);
  let credential: Promise<TokenCredential> | undefined;
  /** The credential, made on first use and kept; a failure is not kept, so the next call tries again. */
  const credentialOf = async (): Promise<TokenCredential> => {
    credential ??= createCredential(config.credential);
    const pending = credential;
    try {
      return await pending;
    } catch (error) {
      if (credential === pending) credential = undefined;
      throw error;
    }
  };
  return {
    cloud: CLOUD,
    async discover(options = {}) {
      const { signal } = options;
      signal?.throwIfAborted();
      let setupError: unknown;
      let cred: TokenCredential | undefined;
      try {
        cred = await credentialOf();
      } catch (error) {
        setupError = error;
      }
      const subscriptions = config.subscriptions.map((s) => s.id);
      const results = await Promise.all(
        subscriptions.map((subscription) =>
          cred === undefined
            ? scopeFailure(subscription, toCloudApiError(subscription, setupError))
            : listSubscription(subscription, cred, { config, connection, limiter, ctx, signal }).catch(
                (error) => {
                  if (signal?.aborted) throw error;
                  return scopeFailure(
                    subscription,
                    toCloudApiError(subscription, error, OPERATION, undefined, connection.endpoint),
                  );
                },
              ),
        ),
      );
      signal?.throwIfAborted();
      return mergeScopes(CLOUD, subscriptions, results, ctx.logger);
    },
    describe(ref, options = {}) {
      return describeCluster(ref, credentialOf, { config, connection, limiter, ctx, signal: options.signal });
    },
  };
}

const GET_OPERATION = 'managedClusters.get';
/**
 * ARM error codes of a 404 that mean the cluster is not there. A missing subscription is a
 * failure, as when listing, and so is a 404 without an ARM code (a wrong endpoint or path).
 */
const ABSENT_CODES = new Set(['resourcenotfound', 'resourcegroupnotfound']);

/** Whether ARM said the managed cluster (or its resource group) does not exist. */
function isAbsent(error: unknown): boolean {
  if (!isRestError(error) || error.statusCode !== 404) return false;
  const code = (error.request ? armErrors.get(error.request)?.code : undefined) ?? error.code;
  return code !== undefined && ABSENT_CODES.has(code.toLowerCase());
}

/**
 * One managed cluster by resource group and name (`managedClusters.get`), in a configured
 * subscription, mapped by {@link normaliseManagedCluster} like the list. The region of the
 * ref is not used: AKS ids do not contain it, and Event Grid events do not carry it.
 */
async function describeCluster(
  ref: { scope: string; region: string; name: string; resourceGroup?: string },
  credentialOf: () => Promise<TokenCredential>,
  run: RunContext,
): Promise<DiscoveredCluster | null> {
  const { config, connection, limiter, ctx, signal } = run;
  // An event for a subscription we were not given makes no call at all. Ids compare in any case, as in ARM.
  const subscription = config.subscriptions.find((s) => s.id.toLowerCase() === ref.scope.toLowerCase())?.id;
  if (subscription === undefined) {
    throw new ConfigError([
      { path: 'clouds.azure.subscriptions', message: `subscription ${ref.scope} is not configured` },
    ]);
  }
  const { resourceGroup, name } = ref;
  if (!resourceGroup) {
    throw new FleetwardError(`aks cluster "${ref.name}" cannot be described without its resource group`);
  }
  if (!name) throw new FleetwardError('an aks cluster reference needs a name');
  signal?.throwIfAborted();
  const what = `getting aks cluster ${name} of resource group ${resourceGroup} in subscription ${subscription}`;
  let cluster: ManagedCluster;
  try {
    const credential = await credentialOf();
    const client = new ContainerServiceClient(
      credential,
      subscription,
      clientOptions(connection, requestPolicy(connection, config.timeoutMs, signal, GET_OPERATION)),
    );
    cluster = await withRetry(
      () => limiter(() => client.managedClusters.get(resourceGroup, name)),
      classify,
      {
        maxAttempts: config.maxAttempts,
        signal,
        onRetry: ({ attempt, delayMs, error }) =>
          ctx.logger.info('Call retried', {
            operation: GET_OPERATION,
            subscription,
            attempt,
            delayMs,
            error: errorInfo(error),
          }),
      },
    );
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (isAbsent(error)) {
      ctx.logger.info('Cluster not found', { subscription, resourceGroup, cluster: name });
      return null;
    }
    const failure = toCloudApiError(subscription, error, GET_OPERATION, what, connection.endpoint);
    if (
      isRestError(error) &&
      error.code === 'PARSE_ERROR' &&
      !(failure instanceof EndpointUnreachableError)
    ) {
      throw new UnparseableClusterError(`${what}: the answer is not valid JSON`, { cause: failure });
    }
    throw failure;
  }
  return normaliseManagedCluster(subscription, cluster);
}

function scopeFailure(subscription: string, error: CloudApiError): ScopeResult {
  return failedScope(CLOUD, subscription, error);
}

interface RunContext {
  config: AzureConfig;
  connection: Connection;
  limiter: Limiter;
  ctx: AdapterContext;
  signal: AbortSignal | undefined;
}

/**
 * Lists one subscription page by page. It is complete only when every page arrived and
 * every cluster parsed: a page that failed (after retries) or could not be read, or a
 * cluster we could not parse, may hide clusters seen before, which must not be taken for
 * deleted. The clusters of the pages that did arrive are still returned.
 */
async function listSubscription(
  subscription: string,
  credential: TokenCredential,
  run: RunContext,
): Promise<ScopeResult> {
  const { config, connection, limiter, ctx, signal } = run;
  const result: ScopeResult = { clusters: [], failures: [], complete: true };
  // One client per subscription and run: the subscription is part of the client, the run's signal part of its policy.
  const client = new ContainerServiceClient(
    credential,
    subscription,
    clientOptions(connection, requestPolicy(connection, config.timeoutMs, signal)),
  );
  const fetchPage = async (continuationToken: string | undefined): Promise<Page> => {
    const pages = client.managedClusters
      .list()
      .byPage(continuationToken === undefined ? undefined : { continuationToken });
    const first = await pages.next();
    if (first.done) return { items: [], next: undefined };
    return { items: first.value, next: first.value.continuationToken };
  };
  let token: string | undefined;
  let pageNumber = 0;
  const seen = new Set<string>();
  do {
    pageNumber++;
    let page: Page;
    try {
      const from = token;
      page = await withRetry(() => limiter(() => fetchPage(from)), classify, {
        maxAttempts: config.maxAttempts,
        signal,
        onRetry: ({ attempt, delayMs, error }) =>
          ctx.logger.info('Call retried', {
            operation: OPERATION,
            subscription,
            page: pageNumber,
            attempt,
            delayMs,
            error: errorInfo(error),
          }),
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const failed = scopeFailure(
        subscription,
        toCloudApiError(subscription, error, OPERATION, undefined, connection.endpoint),
      );
      return { ...failed, clusters: result.clusters, failures: [...result.failures, ...failed.failures] };
    }
    for (const item of page.items) {
      try {
        result.clusters.push(normaliseManagedCluster(subscription, item));
      } catch (error) {
        result.complete = false;
        result.failures.push({
          cloud: CLOUD,
          scope: subscription,
          kind: 'unparseable',
          cluster: item?.name || item?.id || '(unnamed)',
          error: errorInfo(error),
        });
      }
    }
    token = page.next;
    if (token !== undefined && seen.has(token)) {
      const error = new CloudApiError(
        `arm returned a nextLink it had already returned (page ${pageNumber})`,
        {
          cloud: CLOUD,
          operation: OPERATION,
          retryable: false,
        },
      );
      const failed = scopeFailure(subscription, toCloudApiError(subscription, error));
      return { ...failed, clusters: result.clusters, failures: [...result.failures, ...failed.failures] };
    }
    if (token !== undefined) seen.add(token);
  } while (token);
  return result;
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'azure',
    holder: 'member',
    capability: 'discovery',
    permission: 'Microsoft.ContainerService/managedClusters/read',
    calls: ['arm:managedClusters.list', 'arm:managedClusters.get'],
    why: 'list the AKS clusters of each configured subscription, and read one a cluster event names',
  },
];
