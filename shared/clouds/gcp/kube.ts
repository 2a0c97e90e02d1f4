/**
 * Kubernetes access to GKE clusters.
 *
 * Token (`kubeAccess.gcp.auth`):
 * - `google`: a Google OAuth access token (scope cloud-platform) from `google-auth-library`,
 *   with `clouds.gcp.credentialsFile` (a service-account key or a Workload Identity
 *   Federation config) or application default credentials. The library caches and renews
 *   it; a refusal makes a new client, which mints a new one.
 * - `token-file`: the trimmed contents of a file, read again on refresh (a token another
 *   process keeps fresh).
 *
 * Endpoint and CA: the configured override, else ClusterManager `GetCluster`
 * (`https://<endpoint>`, `masterAuth.clusterCaCertificate`) with the discovery client's options.
 */
import { readFile } from 'node:fs/promises';
import { ClusterManagerClient, type protos } from '@google-cloud/container';
import type { FleetConfig, GcpConfig } from '../../config/schema.ts';
import type { KubeEndpoint, KubeEndpointSource } from '../../kube/access.ts';
import type { Cluster } from '../../model.ts';
import {
  CloudApiError,
  ConfigError,
  EndpointUnreachableError,
  FleetwardError,
} from '../../runtime/errors.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { googleTokens } from './auth.ts';
import {
  callOptionsOf,
  classify,
  clientOptions,
  endpointOfConfig,
  grpcCode,
  HTTP_STATUS_OF_CODE,
  toCloudApiError,
} from './grpc.ts';

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const OPERATION = 'GetCluster';

/** Reads a bearer token from a file (trimmed); never quotes the file's contents. */
export async function readTokenFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FleetwardError(
      `cannot read the gke token file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      { cause: error },
    );
  }
  const token = text.trim();
  if (!token) throw new FleetwardError(`the gke token file ${file} is empty`);
  return token;
}

async function getCluster(
  config: GcpConfig,
  cluster: Cluster,
  signal?: AbortSignal,
): Promise<protos.google.container.v1.ICluster> {
  const client = new ClusterManagerClient(clientOptions(config));
  const name = `projects/${cluster.scope}/locations/${cluster.region}/clusters/${cluster.name}`;
  try {
    // Sets up the channel (and credentials) first, so a failure there is an error of this call.
    await client.initialize();
    const [gke] = await withRetry(
      () => client.getCluster({ name }, callOptionsOf(config.timeoutMs, signal)),
      classify,
      { maxAttempts: config.maxAttempts, signal },
    );
    return gke;
  } catch (error) {
    if (signal?.aborted) throw error;
    // A refused, untrusted or HTML-answering endpoint is said as such; anything else as before.
    const down = toCloudApiError(
      cluster.scope,
      error,
      OPERATION,
      `gcp GetCluster of ${cluster.id}`,
      endpointOfConfig(config),
    );
    if (down instanceof EndpointUnreachableError) throw down;
    const code = grpcCode(error);
    const detail = error instanceof Error ? error.message : String(error);
    throw new CloudApiError(
      `gcp GetCluster of ${cluster.id} failed: ${detail.split('\n')[0]}`,
      {
        cloud: 'gcp',
        operation: OPERATION,
        status: code === undefined ? undefined : HTTP_STATUS_OF_CODE[code],
        retryable: classify(error).retry,
      },
      { cause: error },
    );
  } finally {
    await client.close().catch(() => undefined);
  }
}

export function createKubeSource(config: FleetConfig, _ctx: AdapterContext): KubeEndpointSource {
  const access = config.kubeAccess.gcp;
  const gcp = config.clouds.gcp;

  const googleToken = googleTokens(gcp, CLOUD_PLATFORM_SCOPE);
  const token = (fresh: boolean): Promise<string> =>
    access.auth === 'token-file' ? readTokenFile(access.file) : googleToken(fresh);

  return {
    async endpoint(cluster, { override, signal }): Promise<KubeEndpoint> {
      let server: string;
      let ca: string | undefined;
      if (override) {
        server = override.endpoint;
        ca = override.ca;
      } else {
        if (!gcp) {
          throw new ConfigError([
            {
              path: 'clouds.gcp',
              message: `cluster ${cluster.id} is a GKE cluster, but no gcp cloud is configured`,
            },
          ]);
        }
        const gke = await getCluster(gcp, cluster, signal);
        const host = gke.endpoint || undefined;
        const fallback = cluster.endpoint ?? undefined;
        if (!host && !fallback) {
          throw new CloudApiError(`gcp GetCluster of ${cluster.id} gave no endpoint`, {
            cloud: 'gcp',
            operation: OPERATION,
            retryable: false,
          });
        }
        server = host ? `https://${host}` : fallback!;
        const data = gke.masterAuth?.clusterCaCertificate;
        ca = data ? Buffer.from(data, 'base64').toString('utf8') : undefined;
      }
      return { server, ca, token: () => token(false), refresh: () => token(true) };
    },
  };
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'kube',
    permission: 'container.clusters.get',
    calls: ['container:GetCluster'],
    why: "read a cluster's API endpoint and CA certificate to reach its Kubernetes API",
  },
];
