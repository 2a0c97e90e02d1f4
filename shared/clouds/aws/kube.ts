/**
 * Kubernetes access to EKS clusters.
 *
 * Token: what `aws eks get-token` makes, `k8s-aws-v1.` + base64url (no padding) of a
 * presigned STS `GetCallerIdentity` URL (SigV4 query signing, `X-Amz-Expires=60`) whose
 * signed headers include `x-k8s-aws-id: <cluster name>`, so the token is good for that
 * cluster only. The EKS authenticator accepts it for about 15 minutes after signing; one is
 * reused for {@link TOKEN_REUSE_MS} and a new one is minted on refresh. It is signed with
 * the cluster's account role (AssumeRole from the base credentials, as discovery does),
 * kept per account until shortly before it expires.
 *
 * Endpoint and CA: the configured override, else EKS `DescribeCluster`.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsAccount, AwsConfig, FleetConfig } from '../../config/schema.ts';
import type { KubeEndpoint, KubeEndpointSource, KubeSourceContext } from '../../kube/access.ts';
import type { Cluster } from '../../model.ts';
import { CloudApiError, ConfigError } from '../../runtime/errors.ts';
import { type Credentials, createRequestHandler, rejectHtmlAnswers, toCloudApiError } from './client.ts';
import { createRoleSessions, type RoleSessions } from './sessions.ts';

export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
/** The signed header that binds a token to one cluster. */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** Lifetime of the presigned URL, as `aws eks get-token` asks. */
export const PRESIGN_EXPIRES_SECONDS = 60;
/** How long a minted token is handed out again before a new one is minted (EKS accepts ~15 min). */
export const TOKEN_REUSE_MS = 10 * 60_000;
/** Session name of the role assumed for Kubernetes access. */
export const KUBE_SESSION_NAME = 'fleetward-kube';

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytes(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** SHA-256 (HMAC-SHA-256 with a secret) on `node:crypto`, in the shape SignatureV4 asks for. */
class Sha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

/** Where the token's STS request goes: the configured AWS endpoint, else the regional STS endpoint. */
export function stsEndpoint(region: string, endpoint?: string): URL {
  if (endpoint) return new URL(endpoint);
  const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return new URL(`https://sts.${region}.${suffix}/`);
}

/** RFC 3986 encoding, as SigV4 canonical query strings use. */
function encode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export interface EksTokenInput {
  /** EKS cluster name (the value of `x-k8s-aws-id`). */
  clusterName: string;
  /** Region of the cluster (the STS signing region). */
  region: string;
  credentials: Credentials;
  /** Configured AWS endpoint (an emulator), else the regional STS endpoint. */
  endpoint?: string | undefined;
  /** Signing time (default now). */
  now?: Date | undefined;
}

/** Mints an EKS bearer token (see the module comment). */
export async function eksToken(input: EksTokenInput): Promise<string> {
  const url = stsEndpoint(input.region, input.endpoint);
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: input.credentials.accessKeyId,
      secretAccessKey: input.credentials.secretAccessKey,
      ...(input.credentials.sessionToken ? { sessionToken: input.credentials.sessionToken } : {}),
    },
    region: input.region,
    service: 'sts',
    sha256: Sha256,
  });
  const request = new HttpRequest({
    method: 'GET',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname || '/',
    query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
    headers: { host: url.host, [CLUSTER_ID_HEADER]: input.clusterName },
  });
  const signed = await signer.presign(request, {
    expiresIn: PRESIGN_EXPIRES_SECONDS,
    signingDate: input.now ?? new Date(),
  });
  const query = Object.entries(signed.query ?? {})
    .flatMap(([key, value]) =>
      (Array.isArray(value) ? value : [value]).map((v) =>
        v === null ? encode(key) : `${encode(key)}=${encode(v)}`,
      ),
    )
    .join('&');
  const presigned = `${url.protocol}//${url.host}${signed.path}?${query}`;
  return EKS_TOKEN_PREFIX + Buffer.from(presigned, 'utf8').toString('base64url');
}

function accountOf(aws: AwsConfig, cluster: Cluster): AwsAccount {
  const account = aws.accounts.find((a) => a.id === cluster.scope);
  if (!account) {
    throw new ConfigError([
      {
        path: 'clouds.aws.accounts',
        message: `cluster ${cluster.id} is in account ${cluster.scope}, which is not configured`,
      },
    ]);
  }
  return account;
}

export function createKubeSource(config: FleetConfig, ctx: KubeSourceContext): KubeEndpointSource {
  const aws = config.clouds.aws;
  const now = (): Date => ctx.clock?.now() ?? new Date();

  /** Runs one AWS call with a client of its own (its handler is destroyed with it). */
  async function withClient<C extends { destroy(): void }, T>(
    settings: AwsConfig,
    make: (common: object) => C,
    run: (client: C) => Promise<T>,
  ): Promise<T> {
    const requestHandler = createRequestHandler(settings);
    const client = make({
      maxAttempts: settings.maxAttempts,
      retryMode: 'standard',
      requestHandler,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    });
    try {
      return await run(client);
    } finally {
      client.destroy();
    }
  }

  /** Shared by every cluster of the account, so no caller's signal aborts it (the SDK's timeouts bound it). */
  let sessions: RoleSessions | undefined;
  function credentialsFor(settings: AwsConfig, account: AwsAccount): Promise<Credentials> {
    sessions ??= createRoleSessions(settings, KUBE_SESSION_NAME, () => now().getTime());
    return sessions.credentials(account);
  }

  async function describe(
    settings: AwsConfig,
    cluster: Cluster,
    credentials: Credentials,
    signal?: AbortSignal,
  ): Promise<{ server: string; ca: string | undefined }> {
    const out = await withClient(
      settings,
      // An HTML page with 200 would parse as a cluster without an endpoint.
      (common) => rejectHtmlAnswers(new EKSClient({ ...common, region: cluster.region, credentials })),
      async (eks) => {
        try {
          return await eks.send(
            new DescribeClusterCommand({ name: cluster.name }),
            signal ? { abortSignal: signal } : {},
          );
        } catch (error) {
          if (signal?.aborted) throw error;
          throw toCloudApiError(error, 'DescribeCluster', {
            endpoint: settings.endpoint,
            region: cluster.region,
          });
        }
      },
    );
    const server = out.cluster?.endpoint || cluster.endpoint;
    if (!server) {
      throw new CloudApiError(
        `aws DescribeCluster of ${cluster.id} gave no endpoint (is the cluster active?)`,
        {
          cloud: 'aws',
          operation: 'DescribeCluster',
          retryable: false,
        },
      );
    }
    const data = out.cluster?.certificateAuthority?.data;
    return { server, ca: data ? Buffer.from(data, 'base64').toString('utf8') : undefined };
  }

  return {
    async endpoint(cluster, { override, signal }): Promise<KubeEndpoint> {
      if (!aws) {
        throw new ConfigError([
          {
            path: 'clouds.aws',
            message: `cluster ${cluster.id} is an EKS cluster, but no aws cloud is configured`,
          },
        ]);
      }
      const account = accountOf(aws, cluster);
      const where = override
        ? { server: override.endpoint, ca: override.ca }
        : await describe(aws, cluster, await credentialsFor(aws, account), signal);

      let minted: { token: string; at: number } | undefined;
      const mint = async (): Promise<string> => {
        const credentials = await credentialsFor(aws, account);
        const signedAt = now();
        const token = await eksToken({
          clusterName: cluster.name,
          region: cluster.region,
          credentials,
          endpoint: aws.endpoint,
          now: signedAt,
        });
        minted = { token, at: signedAt.getTime() };
        ctx.logger.debug('EKS token minted', { cluster: cluster.id });
        return token;
      };
      return {
        server: where.server,
        ca: where.ca,
        token: async () => (minted && now().getTime() - minted.at < TOKEN_REUSE_MS ? minted.token : mint()),
        refresh: mint,
      };
    },
  };
}

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'member',
    capability: 'kube',
    permission: 'eks:DescribeCluster',
    calls: ['eks:DescribeCluster'],
    why: "read a cluster's API endpoint and CA certificate to reach its Kubernetes API",
  },
  {
    provider: 'aws',
    holder: 'member',
    capability: 'kube',
    permission: 'sts:GetCallerIdentity',
    calls: ['sts:GetCallerIdentity'],
    why: 'the EKS token is a presigned GetCallerIdentity URL the cluster authenticator calls (no IAM policy can deny it; listed for completeness)',
  },
];
