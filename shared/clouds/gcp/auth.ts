/**
 * The bearer token and base URL of the GCP REST calls made with plain `fetch` (Cloud Logging reads, Cloud
 * Resource Manager lookups): Google's own auth library, loaded on first use, with the config's
 * workload identity federation, credentials file or the default credentials. An `insecure` config (a loopback fake) sends none.
 */
import { ExternalAccountClient, GoogleAuth } from 'google-auth-library';
import type { GcpConfig } from '../../config/schema.ts';
import { CloudApiError, ConfigError } from '../../runtime/errors.ts';
import { assertAwsEnvironment, gcpExternalAccountConfig, googleAuthOptions } from './federation.ts';

/** Whether a host name or address is the local machine (`localhost`, `127.0.0.0/8`, `::1`). */
export function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '::1' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * A Google access token source for `scope`: Google's auth library, loaded on first use, with
 * `workloadIdentity` (the generated `external_account` configuration, loaded through
 * `ExternalAccountClient.fromJSON`: an `AwsClient` signing with the function role, no stored
 * secret), else `credentialsFile`, else the default credentials. `fresh` makes a new auth client,
 * so a token the server refused is not handed out again. A failed token fetch is a
 * `CloudApiError` (`GetAccessToken`, not retryable) and is not cached, so the next call tries again.
 */
export function googleTokens(
  gcp: Pick<GcpConfig, 'credentialsFile' | 'workloadIdentity'> | undefined,
  scope: string | string[],
): (fresh?: boolean) => Promise<string> {
  let auth: Promise<{ getAccessToken(): Promise<unknown> }> | undefined;
  const load = async (): Promise<{ getAccessToken(): Promise<unknown> }> => {
    if (gcp?.workloadIdentity) {
      assertAwsEnvironment();
      const client = ExternalAccountClient.fromJSON({
        ...gcpExternalAccountConfig(gcp),
        scopes: Array.isArray(scope) ? scope : [scope],
      });
      if (!client) throw new Error('google-auth-library did not accept the external_account configuration');
      return client;
    }
    return new GoogleAuth({ scopes: scope, ...googleAuthOptions(gcp) });
  };
  return async (fresh = false) => {
    if (fresh || !auth) auth = load();
    let token: string | null | undefined;
    try {
      token = tokenOf(await (await auth).getAccessToken());
    } catch (error) {
      auth = undefined;
      throw new CloudApiError(
        `gcp access token: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
        { cloud: 'gcp', operation: 'GetAccessToken', retryable: false },
        { cause: error },
      );
    }
    if (!token) {
      throw new CloudApiError('gcp access token: the credentials gave no token', {
        cloud: 'gcp',
        operation: 'GetAccessToken',
        retryable: false,
      });
    }
    return token;
  };
}

/** `GoogleAuth.getAccessToken()` answers the token; an auth client answers `{ token }`. */
function tokenOf(answer: unknown): string | null | undefined {
  if (typeof answer === 'string' || answer === null || answer === undefined) return answer;
  return (answer as { token?: string | null }).token;
}

/** A function that answers the `authorization` header for `scope` (none for an `insecure` config). */
export function bearerAuthorization(
  config: Pick<GcpConfig, 'insecure' | 'credentialsFile' | 'workloadIdentity'>,
  scope: string | string[],
): () => Promise<Record<string, string>> {
  const token = googleTokens(config, scope);
  return async (): Promise<Record<string, string>> =>
    config.insecure ? {} : { authorization: `Bearer ${await token()}` };
}

/**
 * The base URL of a GCP REST API from the config field that may override it (a fake's address).
 * A bearer token goes to it, so it must be https, except on loopback; and `insecure` (no
 * credentials at all) is allowed only with an override that is loopback.
 */
export function restBaseUrl(
  config: GcpConfig,
  field: 'loggingEndpoint' | 'resourceManagerEndpoint',
  fallback: string,
  service: string,
): URL {
  const configured = config[field];
  const endpoint = new URL(configured ?? fallback);
  const loopback = isLoopback(endpoint.hostname.replace(/^\[|\]$/g, ''));
  if (config.insecure && (configured === undefined || !loopback)) {
    throw new ConfigError([
      {
        path: 'clouds.gcp.insecure',
        message: `insecure (no credentials) needs a loopback ${field}: ${service} is never called without credentials`,
      },
    ]);
  }
  if (endpoint.protocol !== 'https:' && !loopback) {
    throw new ConfigError([
      {
        path: `clouds.gcp.${field}`,
        message: 'expected an https URL (requests to it carry a bearer token)',
      },
    ]);
  }
  return endpoint;
}
