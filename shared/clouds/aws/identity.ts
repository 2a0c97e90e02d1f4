/**
 * AWS IAM outbound identity federation: `sts:GetWebIdentityToken` returns a JWT signed by AWS
 * STS for the identity Fleetward runs as (the Lambda function's role), for an audience such as
 * Entra ID's `api://AzureADTokenExchange`. Other clouds trust the account's issuer and exchange
 * the JWT for their own short-lived token, so no client secret is stored anywhere.
 *
 * The call goes to a regional STS endpoint: the operation does not exist on the global one
 * (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetWebIdentityToken.html).
 * Only `@aws-sdk/client-sts` is imported, so a bundle that federates into Azure carries no other
 * AWS client; this module is reached through the Azure adapters, which the registry loads lazily.
 */
import { GetWebIdentityTokenCommand, STSClient, type STSClientConfig } from '@aws-sdk/client-sts';
import { CloudApiError } from '../../runtime/errors.ts';
import type { PermissionGrant } from '../permissions.ts';

/** The grant the calls below need, held by the function's own role. */
export const PERMISSIONS: readonly PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'function',
    capability: 'identity',
    permission: 'sts:GetWebIdentityToken',
    calls: ['sts:GetWebIdentityToken'],
    why: 'signs a short-lived JWT for the function role that Entra ID (or another cloud) exchanges for its own token, so no client secret is stored',
  },
];

/** A token is asked for again when it expires within this long (STS tokens live 60-3600 s). */
export const WEB_IDENTITY_REFRESH_BEFORE_MS = 60_000;

export interface WebIdentityTokenOptions {
  /** The `aud` claim; Entra ID expects `api://AzureADTokenExchange`. */
  audience: string;
  /** Region of the STS endpoint (GetWebIdentityToken has no global endpoint). */
  region: string;
  /** STS endpoint override (an emulator); default the SDK's regional endpoint for `region`. */
  endpoint?: string | undefined;
  /** Token lifetime, 60-3600 s; STS's default is 300. */
  durationSeconds?: number | undefined;
  /** `RS256` (default) or `ES384`. */
  signingAlgorithm?: 'RS256' | 'ES384';
  /** Credentials that sign the call; default the SDK's chain (the Lambda role's environment). */
  credentials?: STSClientConfig['credentials'];
  /** Attempts including the first (default 3). */
  maxAttempts?: number;
}

/** A signed web identity token and when it expires (epoch ms). */
export interface WebIdentityToken {
  token: string;
  expiresAt: number;
}

/**
 * Asks STS once for a web identity token for `options.audience`. Failures are a
 * `CloudApiError` (`GetWebIdentityToken`), retryable for throttling and server errors; an
 * account without outbound identity federation enabled answers
 * `OutboundWebIdentityFederationDisabledException`, which the message names.
 */
export async function webIdentityToken(options: WebIdentityTokenOptions): Promise<WebIdentityToken> {
  const client = new STSClient({
    region: options.region,
    maxAttempts: options.maxAttempts ?? 3,
    retryMode: 'standard',
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  });
  try {
    const out = await client.send(
      new GetWebIdentityTokenCommand({
        Audience: [options.audience],
        SigningAlgorithm: options.signingAlgorithm ?? 'RS256',
        ...(options.durationSeconds === undefined ? {} : { DurationSeconds: options.durationSeconds }),
      }),
    );
    if (!out.WebIdentityToken || !out.Expiration) {
      throw new CloudApiError('aws GetWebIdentityToken answered without a token or an expiration', {
        cloud: 'aws',
        operation: 'GetWebIdentityToken',
        retryable: false,
      });
    }
    return { token: out.WebIdentityToken, expiresAt: out.Expiration.getTime() };
  } catch (error) {
    if (error instanceof CloudApiError) throw error;
    const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const name = e.name ?? 'Error';
    throw new CloudApiError(
      `aws GetWebIdentityToken failed: ${name}: ${(e.message ?? String(error)).split('\n')[0]}`,
      {
        cloud: 'aws',
        operation: 'GetWebIdentityToken',
        status,
        retryable: status === 429 || (status !== undefined && status >= 500) || name.includes('Throttl'),
      },
      { cause: error },
    );
  } finally {
    client.destroy();
  }
}

/**
 * A cached source of web identity tokens: one STS call, shared by concurrent callers, kept
 * until {@link WEB_IDENTITY_REFRESH_BEFORE_MS} before it expires; a failed call is not kept,
 * so the next caller asks again.
 */
export function webIdentityTokenSource(
  options: WebIdentityTokenOptions,
  clock: () => number = Date.now,
): () => Promise<string> {
  let cached: Promise<WebIdentityToken> | undefined;
  /** Expiry of the token `cached` settled with; `Infinity` while the call is in flight. */
  let expiresAt = 0;
  return async () => {
    if (!cached || expiresAt - clock() <= WEB_IDENTITY_REFRESH_BEFORE_MS) {
      const pending = webIdentityToken(options);
      cached = pending;
      expiresAt = Number.POSITIVE_INFINITY;
      pending.then(
        (token) => {
          if (cached === pending) expiresAt = token.expiresAt;
        },
        () => {
          if (cached === pending) {
            cached = undefined;
            expiresAt = 0;
          }
        },
      );
    }
    return (await cached).token;
  };
}
