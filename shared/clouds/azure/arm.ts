/**
 * What every Azure Resource Manager adapter shares: errors wrapped once and their retry
 * classification, the credential of a config (federated, token or file; no stored secret),
 * the connection (endpoint, CA, token scope) and pipeline policy of its clients, and ARM id
 * and location helpers. Apart from discovery, so an adapter that needs these never bundles the
 * AKS client (`@azure/arm-containerservice`) unless it calls AKS.
 */
import { readFileSync } from 'node:fs';
import type { ContainerServiceClient } from '@azure/arm-containerservice';
import type { AzureConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import { CloudApiError, ConfigError, FleetwardError } from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import { parseRetryAfter, type RetryDecision } from '../../runtime/retry.ts';
import { awsFederationCredential } from './credential.ts';

const CLOUD = 'azure';
export const OPERATION = 'managedClusters.list';
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
export const armErrors = new WeakMap<object, ArmError>();

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

export function isRestError(error: unknown): error is RestErrorLike {
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
export function toCloudApiError(
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
 * for `default`, `workload-identity` and `aws-federation`, so an `access-token` run never loads it.
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
    case 'aws-federation':
      // AWS IAM outbound identity federation feeds a ClientAssertionCredential: no stored secret.
      return awsFederationCredential(credential);
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

/** ARM location as a region name: `West Europe` → `westeurope`. */
export function regionOf(location: string): string {
  return location.toLowerCase().replace(/\s+/g, '');
}

/** The resource group named in an ARM id (`/subscriptions/…/resourceGroups/<rg>/…`, any case). */
export function resourceGroupOf(id: string): string | undefined {
  return /\/resourcegroups\/([^/]+)/i.exec(id)?.[1];
}

/** The ARM id of an AKS cluster. */
export function clusterResourceId(cluster: Cluster): string {
  const rg = cluster.resourceGroup ?? cluster.id.split('/')[2];
  if (cluster.cloud !== 'azure' || !rg) {
    throw new FleetwardError(`cluster ${cluster.id} is not an aks cluster (no resource group)`);
  }
  return `/subscriptions/${cluster.scope}/resourceGroups/${rg}/providers/Microsoft.ContainerService/managedClusters/${cluster.name}`;
}
