/**
 * How every AWS client of Fleetward is built, shared by discovery and Kubernetes access:
 * one `NodeHttpHandler` per run (per-attempt `requestTimeout` that throws, keep-alive
 * sockets), the SDK's standard retry, the configured endpoint override, base credentials
 * from a named profile (else the default chain), and one AssumeRole per account.
 */
import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import { fromIni } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsAccount, AwsConfig } from '../../config/schema.ts';
import { CloudApiError } from '../../runtime/errors.ts';

/** Temporary credentials of an assumed role. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** One handler (one socket pool) for every client of a run; `requestTimeout` is per attempt. */
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

/** The client settings every AWS client of a run shares (retry, handler, endpoint override). */
export function commonClientConfig(config: AwsConfig, requestHandler: NodeHttpHandler) {
  return {
    maxAttempts: config.maxAttempts,
    retryMode: 'standard',
    requestHandler,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  };
}

/** Base credentials that assume each account's role: a named profile when configured, else the default chain. */
export function baseCredentials(config: AwsConfig) {
  return config.credentials
    ? {
        credentials: fromIni({
          profile: config.credentials.profile,
          ...(config.credentials.file && { filepath: config.credentials.file }),
        }),
      }
    : {};
}

interface SdkErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $responseBodyText?: string;
}

/** The HTTP status of an SDK error, if it has one. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as SdkErrorShape | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Wraps an SDK error once, where it enters (the SDK error as `cause`). */
export function toCloudApiError(error: unknown, operation: string): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const e = (error ?? {}) as SdkErrorShape;
  const status = statusOf(error);
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
 * Assumes an account's role (with its external id). Rejects with the SDK's error, or a
 * `CloudApiError` when STS answers without credentials.
 */
export async function assumeRole(
  sts: STSClient,
  account: Pick<AwsAccount, 'roleArn' | 'externalId'>,
  sessionName: string,
  sendOptions: { abortSignal?: AbortSignal } = {},
): Promise<Credentials> {
  const out = await sts.send(
    new AssumeRoleCommand({
      RoleArn: account.roleArn,
      RoleSessionName: sessionName,
      ...(account.externalId ? { ExternalId: account.externalId } : {}),
    }),
    sendOptions,
  );
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
