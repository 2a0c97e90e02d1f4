/**
 * Kubernetes access to AKS clusters (`kubeAccess.azure.auth`):
 * - `cluster-user-credentials`: ARM `listClusterUserCredential` returns a kubeconfig; its
 *   server, CA and user token are used as they are (clusters with local accounts). A
 *   refusal fetches the kubeconfig again.
 * - `aad`: an Entra ID token for the AKS AAD server application
 *   ({@link AKS_AAD_SERVER_SCOPE}) from the configured Azure credential; the server and CA
 *   still come from that kubeconfig (format `exec`, whose user part is not used).
 *
 * ARM is reached the way discovery reaches it: the configured endpoint and extra CA, our
 * request policy (same-origin check, per-attempt deadline) and our retries. An override
 * replaces the server and CA (then `aad` makes no ARM call at all).
 */
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { KubeConfig } from '@kubernetes/client-node';
import type { AzureConfig, FleetConfig } from '../../config/schema.ts';
import type { KubeEndpoint, KubeEndpointSource } from '../../kube/access.ts';
import type { Cluster } from '../../model.ts';
import { CloudApiError, ConfigError } from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import {
  type Connection,
  classify,
  clientOptions,
  connectionOf,
  createCredential,
  requestPolicy,
  resourceGroupOf,
  SERVICE,
  type TokenCredential,
} from './arm.ts';

/** The scope of the AKS AAD server application (the same id in every AKS cluster). */
export const AKS_AAD_SERVER_SCOPE = '6dae42f8-4368-4678-94ff-3960e28e3630/.default';
const OPERATION = 'managedClusters.listClusterUserCredentials';

/** What a cluster-user kubeconfig says about its current context. */
export interface UserKubeconfig {
  server: string;
  ca: string | undefined;
  /** The user's bearer token; absent for `exec` (AAD) kubeconfigs. */
  token: string | undefined;
}

/** Reads the current context's server, CA and token of a kubeconfig (never quoting it in errors). */
export function parseUserKubeconfig(text: string, cluster: string): UserKubeconfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (error) {
    throw new CloudApiError(
      `the cluster user credentials of ${cluster} are not a readable kubeconfig`,
      { cloud: 'azure', operation: OPERATION, retryable: false },
      { cause: error },
    );
  }
  const context = kc.getContextObject(kc.getCurrentContext()) ?? kc.getContexts()[0];
  const server = context ? kc.getCluster(context.cluster) : kc.getClusters()[0];
  const user = context ? kc.getUser(context.user) : kc.getUsers()[0];
  if (!server?.server) {
    throw new CloudApiError(`the cluster user credentials of ${cluster} name no server`, {
      cloud: 'azure',
      operation: OPERATION,
      retryable: false,
    });
  }
  return {
    server: server.server,
    ca: server.caData ? Buffer.from(server.caData, 'base64').toString('utf8') : undefined,
    token: user?.token || undefined,
  };
}

/** Resource group of an AKS cluster: its own field, else its ARM-style id (`azure/<sub>/<rg>/<name>`). */
function resourceGroup(cluster: Cluster): string {
  const rg = cluster.resourceGroup ?? resourceGroupOf(cluster.id) ?? cluster.id.split('/')[2];
  if (!rg) {
    throw new ConfigError([
      { path: 'clouds.azure', message: `cluster ${cluster.id} names no resource group` },
    ]);
  }
  return rg;
}

/**
 * Wraps an error of the ARM call once. A `RestError` of the pipeline to ARM at `endpoint` that
 * says the endpoint was not reached (refused, DNS, TLS, timeout) is `cannot reach arm at
 * <endpoint>: <reason>`; a credential's errors are about its token endpoint, not ARM.
 */
function wrap(error: unknown, cluster: Cluster, endpoint: string): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const e = error as { name?: unknown; statusCode?: unknown; code?: unknown; message?: unknown } | null;
  const status = typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (e?.name === 'RestError') {
    const down = unreachable(error, {
      cloud: 'azure',
      operation: OPERATION,
      service: SERVICE,
      endpoint,
      status,
    });
    if (down) return down;
  }
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const what = [status, code].filter((p) => p !== undefined).join(' ');
  const detail = typeof e?.message === 'string' ? e.message.split('\n')[0] : String(error);
  return new CloudApiError(
    `azure listClusterUserCredential of ${cluster.id} failed${what ? ` (${what})` : ''}: ${detail}`,
    { cloud: 'azure', operation: OPERATION, status, retryable: classify(error).retry },
    { cause: error },
  );
}

export function createKubeSource(config: FleetConfig, _ctx: AdapterContext): KubeEndpointSource {
  const access = config.kubeAccess.azure;
  const azure = config.clouds.azure;
  let connection: Connection | undefined;
  let credential: Promise<TokenCredential> | undefined;

  const settings = (cluster: Cluster): AzureConfig => {
    if (!azure) {
      throw new ConfigError([
        {
          path: 'clouds.azure',
          message: `cluster ${cluster.id} is an AKS cluster, but no azure cloud is configured`,
        },
      ]);
    }
    return azure;
  };
  const credentialOf = (config: AzureConfig): Promise<TokenCredential> => {
    if (!credential) {
      credential = createCredential(config.credential);
      credential.catch(() => {
        credential = undefined;
      });
    }
    return credential;
  };

  const clients = new Map<string, ContainerServiceClient>();

  async function userKubeconfig(cluster: Cluster, signal: AbortSignal | undefined): Promise<UserKubeconfig> {
    const config = settings(cluster);
    connection ??= connectionOf(config);
    const conn = connection;
    const cred = await credentialOf(config);
    // One client (and connection pool) per subscription; the caller's signal goes with each call.
    let client = clients.get(cluster.scope);
    if (!client) {
      client = new ContainerServiceClient(
        cred,
        cluster.scope,
        clientOptions(conn, requestPolicy(conn, config.timeoutMs, undefined, OPERATION)),
      );
      clients.set(cluster.scope, client);
    }
    const subscriptionClient = client;
    let result: Awaited<ReturnType<ContainerServiceClient['managedClusters']['listClusterUserCredentials']>>;
    try {
      result = await withRetry(
        () =>
          subscriptionClient.managedClusters.listClusterUserCredentials(
            resourceGroup(cluster),
            cluster.name,
            {
              ...(access.auth === 'aad' ? { format: 'exec' } : {}),
              ...(signal ? { abortSignal: signal } : {}),
            },
          ),
        classify,
        { maxAttempts: config.maxAttempts, signal },
      );
    } catch (error) {
      if (signal?.aborted) throw error;
      throw wrap(error, cluster, conn.endpoint);
    }
    const value = result.kubeconfigs?.find((k) => k.value && k.value.length > 0)?.value;
    if (!value) {
      throw new CloudApiError(`azure listClusterUserCredential of ${cluster.id} returned no kubeconfig`, {
        cloud: 'azure',
        operation: OPERATION,
        retryable: false,
      });
    }
    return parseUserKubeconfig(Buffer.from(value).toString('utf8'), cluster.id);
  }

  async function aadToken(cluster: Cluster): Promise<string> {
    const cred = await credentialOf(settings(cluster));
    let token: { token: string } | null;
    try {
      token = await cred.getToken(AKS_AAD_SERVER_SCOPE);
    } catch (error) {
      throw new CloudApiError(
        `azure token for the AKS server application: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
        { cloud: 'azure', operation: 'GetToken', retryable: false },
        { cause: error },
      );
    }
    if (!token?.token) {
      throw new CloudApiError('azure token for the AKS server application: the credential gave no token', {
        cloud: 'azure',
        operation: 'GetToken',
        retryable: false,
      });
    }
    return token.token;
  }

  return {
    async endpoint(cluster, { override, signal }): Promise<KubeEndpoint> {
      if (access.auth === 'aad') {
        const where = override
          ? { server: override.endpoint, ca: override.ca }
          : await userKubeconfig(cluster, signal);
        return {
          server: where.server,
          ca: where.ca,
          token: () => aadToken(cluster),
          refresh: () => aadToken(cluster),
        };
      }
      let user = await userKubeconfig(cluster, signal);
      const tokenOf = (u: UserKubeconfig): string => {
        if (!u.token) {
          throw new CloudApiError(
            `the cluster user credentials of ${cluster.id} carry no token (an Entra ID cluster: use kubeAccess.azure.auth "aad")`,
            { cloud: 'azure', operation: OPERATION, retryable: false },
          );
        }
        return u.token;
      };
      tokenOf(user);
      return {
        server: override?.endpoint ?? user.server,
        ca: override ? override.ca : user.ca,
        token: async () => tokenOf(user),
        refresh: async () => {
          user = await userKubeconfig(cluster, signal);
          return tokenOf(user);
        },
      };
    },
  };
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'azure',
    holder: 'member',
    capability: 'kube',
    permission: 'Microsoft.ContainerService/managedClusters/listClusterUserCredential/action',
    calls: ['arm:managedClusters.listClusterUserCredentials'],
    why: "get a cluster's user kubeconfig (API endpoint and CA; Entra ID token login)",
  },
];
