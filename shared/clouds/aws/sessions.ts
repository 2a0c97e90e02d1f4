/**
 * Assumed-role credentials per AWS account, shared by every caller of one adapter: one
 * AssumeRole per account (concurrent callers wait for the same one), kept until shortly
 * before the credentials expire, and never kept when the call failed.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsAccount, AwsConfig } from '../../config/schema.ts';
import type { Limiter } from '../../runtime/concurrency.ts';
import { CloudApiError, EndpointUnreachableError } from '../../runtime/errors.ts';
import {
  baseCredentials,
  type Credentials,
  createRequestHandler,
  credentialsOf,
  rejectHtmlAnswers,
  toCloudApiError,
} from './client.ts';

/** Credentials are assumed again when they expire within this long. */
export const REFRESH_BEFORE_MS = 5 * 60_000;

export interface RoleSessions {
  /** The account's role credentials (the SDK's retries and timeouts bound the call, not a caller's signal). */
  credentials(account: AwsAccount): Promise<Credentials>;
  /** Releases the STS client. */
  close(): void;
}

export function createRoleSessions(
  config: AwsConfig,
  sessionName: string,
  clock: () => number = Date.now,
): RoleSessions {
  const requestHandler = createRequestHandler(config);
  let sts: STSClient | undefined;
  const cache = new Map<string, { credentials: Promise<Credentials>; until: number }>();

  const assume = async (account: AwsAccount): Promise<Credentials> => {
    sts ??= rejectHtmlAnswers(
      new STSClient({
        maxAttempts: config.maxAttempts,
        retryMode: 'standard',
        requestHandler,
        region: config.homeRegion,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        ...baseCredentials(config),
      }),
    );
    try {
      const out = await sts.send(
        new AssumeRoleCommand({
          RoleArn: account.roleArn,
          RoleSessionName: sessionName,
          ...(account.externalId ? { ExternalId: account.externalId } : {}),
        }),
      );
      return credentialsOf(out);
    } catch (error) {
      throw toCloudApiError(error, 'AssumeRole', { endpoint: config.endpoint, region: config.homeRegion });
    }
  };

  return {
    credentials(account) {
      const cached = cache.get(account.id);
      if (cached && clock() < cached.until) return cached.credentials;
      const entry = { credentials: assume(account), until: Number.POSITIVE_INFINITY };
      cache.set(account.id, entry);
      entry.credentials.then(
        (c) => {
          if (c.expiration) entry.until = c.expiration.getTime() - REFRESH_BEFORE_MS;
        },
        () => {
          if (cache.get(account.id) === entry) cache.delete(account.id);
        },
      );
      return entry.credentials;
    },
    close() {
      sts?.destroy();
      requestHandler.destroy();
    },
  };
}

/**
 * Runs one AWS call in a limiter slot; SDK errors come out as `CloudApiError` (prefixed with `what`), an abort as the signal's reason.
 * `where.endpoint` (the configured endpoint) is what an unreachable endpoint's error names.
 */
export function caller(limiter: Limiter, where: { endpoint?: string | undefined } = {}) {
  return <T>(
    operation: string,
    what: string,
    signal: AbortSignal | undefined,
    send: () => Promise<T>,
  ): Promise<T> =>
    limiter(async () => {
      signal?.throwIfAborted();
      try {
        return await send();
      } catch (error) {
        signal?.throwIfAborted();
        const wrapped = toCloudApiError(error, operation, where);
        // Already says which service and endpoint could not be reached: keep it as it is.
        if (wrapped instanceof EndpointUnreachableError) throw wrapped;
        throw new CloudApiError(
          `${what}: ${wrapped.message}`,
          { cloud: 'aws', operation, status: wrapped.status, retryable: wrapped.retryable },
          { cause: wrapped.cause ?? error },
        );
      }
    });
}

/**
 * Provider permissions of this adapter's calls (shared/clouds/permissions.ts). Every capability
 * that works inside a member account first assumes the account's reader role with the
 * function's own credentials, so `sts:AssumeRole` is held by the function once per such capability.
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  ...(['discovery', 'tags', 'budgets', 'kube', 'velero', 'audit-read'] as const).map((capability) => ({
    provider: 'aws' as const,
    holder: 'function' as const,
    capability,
    permission: 'sts:AssumeRole',
    calls: ['sts:AssumeRole'],
    why: 'assume the reader role (roleArn, externalId) of each configured member account',
  })),
];
