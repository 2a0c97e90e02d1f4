/**
 * The bearer token of the GCP REST calls made with plain `fetch` (Cloud Logging reads, Cloud
 * Resource Manager lookups): Google's own auth library, loaded on first use, with the config's
 * credentials file or the default credentials. An `insecure` config (a loopback fake) sends none.
 */
import type { GcpConfig } from '../../config/schema.ts';
import { CloudApiError } from '../../runtime/errors.ts';

/**
 * A function that answers the `authorization` header for `scope`. A failed token fetch is a
 * `CloudApiError` (`GetAccessToken`, not retryable) and is not cached, so the next call tries again.
 */
export function bearerAuthorization(
  config: Pick<GcpConfig, 'insecure' | 'credentialsFile'>,
  scope: string | string[],
): () => Promise<Record<string, string>> {
  let auth: Promise<{ getAccessToken(): Promise<string | null | undefined> }> | undefined;
  return async (): Promise<Record<string, string>> => {
    if (config.insecure) return {};
    auth ??= import('google-auth-library').then(
      ({ GoogleAuth }) =>
        new GoogleAuth({
          scopes: scope,
          ...(config.credentialsFile ? { keyFilename: config.credentialsFile } : {}),
        }),
    );
    let token: string | null | undefined;
    try {
      token = await (await auth).getAccessToken();
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
    return { authorization: `Bearer ${token}` };
  };
}
