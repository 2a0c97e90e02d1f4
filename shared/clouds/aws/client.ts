/**
 * What every AWS adapter shares: the HTTP handler and base credentials of its clients, the
 * temporary credentials of an assumed role, the configured account of a cluster, HTML answers
 * refused and SDK errors wrapped once. Apart from discovery (EKS, EC2), so an adapter that
 * needs these never bundles the discovery SDKs.
 */
import type { AssumeRoleCommandOutput } from '@aws-sdk/client-sts';
import { fromIni } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsAccount, AwsConfig } from '../../config/schema.ts';
import { CloudApiError, ConfigError } from '../../runtime/errors.ts';
import { hostFromError, isHtmlContentType, unreachable } from '../../runtime/network.ts';

export interface SdkErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $responseBodyText?: string;
  /** The raw HTTP response, which smithy's deserializer attaches to the errors it raises. */
  $response?: { headers?: Record<string, string | undefined> };
}

export function statusOf(error: unknown): number | undefined {
  const status = (error as SdkErrorShape | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** An HTML answer, raised by {@link rejectHtmlAnswers} in the shape of an SDK error (`$metadata`, `$response`). */
class HtmlAnswerError extends Error {
  readonly $metadata: { httpStatusCode: number };
  readonly $response: { headers: Record<string, string | undefined> };
  constructor(status: number, headers: Record<string, string | undefined>) {
    super(`answered ${status} with ${headers['content-type']}`);
    this.name = 'HtmlAnswerError';
    this.$metadata = { httpStatusCode: status };
    this.$response = { headers };
  }
}

/** The parts of a smithy client this module adds a middleware to. */
interface WithMiddlewareStack {
  middlewareStack: {
    addRelativeTo(
      middleware: (
        next: (args: unknown) => Promise<{ response: unknown }>,
      ) => (args: unknown) => Promise<{ response: unknown }>,
      options: { name: string; relation: 'before' | 'after'; toMiddleware: string },
    ): void;
  };
}

/**
 * Makes `client` fail every call that an HTML page answers, whatever its status, before the
 * SDK parses it: XML parsers (STS, S3) take a page for an answer without fields, so a captive
 * portal's 200 would read as "AssumeRole answered without credentials" or as a bucket in
 * us-east-1. The error reaches {@link toCloudApiError} as an HTML answer.
 */
export function rejectHtmlAnswers<C extends object>(client: C): C {
  (client as unknown as WithMiddlewareStack).middlewareStack.addRelativeTo(
    (next) => async (args) => {
      const result = await next(args);
      const response = result.response as { statusCode?: number; headers?: Record<string, string> };
      const headers = response?.headers ?? {};
      if (isHtmlContentType(headers['content-type'])) {
        throw new HtmlAnswerError(response.statusCode ?? 0, headers);
      }
      return result;
    },
    // Between the deserializer and the transport: the raw response, before it is parsed.
    { name: 'fleetwardRejectHtmlAnswers', relation: 'after', toMiddleware: 'deserializerMiddleware' },
  );
  return client;
}

/** The AWS service an operation belongs to, for messages (`cannot reach eks at …`). */
const SERVICE_OF: Record<string, string> = {
  AssumeRole: 'sts',
  GetCallerIdentity: 'sts',
  DescribeRegions: 'ec2',
  ListClusters: 'eks',
  DescribeCluster: 'eks',
  TagResource: 'eks',
  UntagResource: 'eks',
  ListTagsForResource: 'eks',
  GetBucketLocation: 's3',
  Sign: 'kms',
  GetPublicKey: 'kms',
  FilterLogEvents: 'cloudwatch logs',
  DescribeBudgets: 'budgets',
  DescribeNotificationsForBudget: 'budgets',
  DescribeSubscribersForNotification: 'budgets',
  CreateBudget: 'budgets',
  UpdateBudget: 'budgets',
  CreateNotification: 'budgets',
  DeleteNotification: 'budgets',
  DeleteBudget: 'budgets',
};

/**
 * Wraps an SDK or network error once, where it enters (a `CloudApiError` passes through unchanged).
 * A refused connection, failed DNS lookup, rejected certificate, timeout, reset or HTML answer
 * (a parse error of markup, or an error response whose content type is HTML) becomes an `EndpointUnreachableError` naming the service and `where.endpoint` (the configured
 * endpoint; else the host the socket error names; else the service's regional AWS endpoint).
 */
export function toCloudApiError(
  error: unknown,
  operation: string,
  where: { endpoint?: string | undefined; region?: string | undefined } = {},
): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const e = (error ?? {}) as SdkErrorShape;
  const status = statusOf(error);
  const service = SERVICE_OF[operation] ?? 'aws';
  const endpoint =
    where.endpoint ??
    hostFromError(error) ??
    (where.region && service !== 'aws'
      ? `https://${service}.${where.region}.amazonaws.com`
      : `the ${service} endpoint`);
  const contentType = e.$response?.headers?.['content-type'];
  const down = unreachable(error, { cloud: 'aws', operation, service, endpoint, status, contentType });
  if (down) return down;
  const name = e.name ?? 'Error';
  const retryable =
    status === 429 ||
    (status !== undefined && status >= 500) ||
    name === 'TimeoutError' ||
    name.includes('Throttl');
  const detail = (e.message ?? String(error)).split('\n')[0];
  return new CloudApiError(
    `aws ${operation} failed: ${name}${detail ? `: ${detail}` : ''}`,
    { cloud: 'aws', operation, status, retryable },
    { cause: error },
  );
}

/**
 * The HTTP handler of a run's clients: keep-alive sockets up to `concurrency`, and
 * `timeoutMs` both to connect and per attempt. Share one per run (one socket pool) and
 * `destroy()` it when the run ends.
 */
export function createRequestHandler(config: AwsConfig): NodeHttpHandler {
  const agentOptions = { keepAlive: true, maxSockets: config.concurrency };
  return new NodeHttpHandler({
    requestTimeout: config.timeoutMs,
    throwOnRequestTimeout: true,
    connectionTimeout: config.timeoutMs,
    httpAgent: agentOptions,
    httpsAgent: agentOptions,
  });
}

/** The base credentials that assume each account's role: a named profile when configured, else the default chain. */
export function baseCredentials(config: AwsConfig): { credentials?: ReturnType<typeof fromIni> } {
  return config.credentials
    ? {
        credentials: fromIni({
          profile: config.credentials.profile,
          ...(config.credentials.file && { filepath: config.credentials.file }),
        }),
      }
    : {};
}

/** The temporary credentials of an AssumeRole answer; a `CloudApiError` when it carries none. */
export function credentialsOf(out: AssumeRoleCommandOutput): Credentials {
  const c = out.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey) {
    throw new CloudApiError('aws AssumeRole answered without credentials', {
      cloud: 'aws',
      operation: 'AssumeRole',
      retryable: false,
    });
  }
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
    ...(c.Expiration ? { expiration: c.Expiration } : {}),
  };
}

/**
 * The configured account of `ref`, whose region it must also list, else a `ConfigError` (before any
 * call: an event for an account we were not given must never be answered with another
 * account's credentials). An account with `regions: all` accepts any well-formed region.
 */
export function configuredTarget(config: AwsConfig, ref: { scope: string; region: string }): AwsAccount {
  const index = config.accounts.findIndex((a) => a.id === ref.scope);
  const account = config.accounts[index];
  if (!account) {
    throw new ConfigError([
      { path: 'clouds.aws.accounts', message: `account ${ref.scope} is not configured` },
    ]);
  }
  const allowed =
    account.regions === 'all' ? REGION_NAME.test(ref.region) : account.regions.includes(ref.region);
  if (!allowed) {
    throw new ConfigError([
      {
        path: `clouds.aws.accounts.${index}.regions`,
        message: `region "${ref.region}" is not configured for account ${ref.scope}`,
      },
    ]);
  }
  return account;
}

const REGION_NAME = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** Temporary credentials of an assumed role. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}
