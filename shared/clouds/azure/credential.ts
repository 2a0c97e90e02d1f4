/**
 * The Azure credential of `type: aws-federation`: Entra ID workload identity federation fed by
 * AWS IAM outbound identity federation, so Fleetward on Lambda reaches Azure with no client
 * secret and no certificate anywhere.
 *
 * `@azure/identity`'s `ClientAssertionCredential` asks Entra ID for a token with the
 * client-credentials grant and a `client_assertion`
 * (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow#third-case-access-token-request-with-a-federated-credential);
 * the assertion is a JWT from AWS STS `GetWebIdentityToken` for audience
 * `api://AzureADTokenExchange`, signed for the function's role, asked for on the regional STS
 * endpoint and kept until shortly before it expires (`webIdentityTokenSource`). Entra ID
 * trusts it through a federated identity credential on the app registration whose issuer is
 * the AWS account's outbound-federation issuer URL and whose subject is the role ARN.
 *
 * Each deployment signs in as its own app registration (one holds at most 20 federated
 * credentials, and every function role is a distinct subject): `FLEETWARD_AZURE_CLIENT_ID`,
 * which the deployment sets from its `azureClientId` parameter, overrides the configured
 * `clientId` ({@link clientIdOf}).
 *
 * The credential type takes no secret, no certificate and no token file, and does not look at
 * `AZURE_CLIENT_SECRET` or any other environment credential (unlike `DefaultAzureCredential`).
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { AzureAwsFederation } from '../../config/schema.ts';
import { ConfigError } from '../../runtime/errors.ts';
import { webIdentityTokenSource } from '../aws/identity.ts';
import type { TokenCredential } from './arm.ts';

/** Options a test may inject; the product passes none. */
export interface AwsFederationDeps {
  env?: NodeJS.ProcessEnv;
  clock?: () => number;
}

/** The STS region: the configured one, else the region the function runs in. */
export function stsRegionOf(credential: AzureAwsFederation, env: NodeJS.ProcessEnv = process.env): string {
  const region = credential.stsRegion ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new ConfigError([
      {
        path: 'clouds.azure.credential.stsRegion',
        message:
          'expected a region: GetWebIdentityToken has no global STS endpoint, and AWS_REGION is not set',
      },
    ]);
  }
  return region;
}

/** The variable a deployment names its own app registration in (serverless param `azureClientId`). */
export const AZURE_CLIENT_ID_VARIABLE = 'FLEETWARD_AZURE_CLIENT_ID';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The app registration to sign in as: `FLEETWARD_AZURE_CLIENT_ID` when set and not empty (the
 * deployment's own), else `clouds.azure.credential.clientId`.
 *
 * @throws ConfigError when the variable is set but is not a GUID.
 */
export function clientIdOf(credential: AzureAwsFederation, env: NodeJS.ProcessEnv = process.env): string {
  const override = env[AZURE_CLIENT_ID_VARIABLE]?.trim();
  if (!override) return credential.clientId;
  if (!GUID.test(override)) {
    throw new ConfigError([
      {
        path: AZURE_CLIENT_ID_VARIABLE,
        message: `expected an app registration's client id (a GUID), got "${override}"`,
      },
    ]);
  }
  return override;
}

/**
 * A `ClientAssertionCredential` whose assertion is an AWS web identity token (see the module
 * comment). A bad `authorityCaFile` or a missing STS region fails here, before any call.
 */
export async function awsFederationCredential(
  credential: AzureAwsFederation,
  deps: AwsFederationDeps = {},
): Promise<TokenCredential> {
  const region = stsRegionOf(credential, deps.env);
  const clientId = clientIdOf(credential, deps.env);
  let ca: string[] | undefined;
  if (credential.authorityCaFile !== undefined) {
    try {
      // `tlsOptions.ca` replaces Node's defaults, so they are passed along.
      ca = [...rootCertificates, readFileSync(credential.authorityCaFile, 'utf8')];
    } catch (error) {
      throw new ConfigError(
        [
          {
            path: 'clouds.azure.credential.authorityCaFile',
            message: `cannot read ${credential.authorityCaFile}: ${(error as Error).message}`,
          },
        ],
        undefined,
        { cause: error },
      );
    }
  }
  const assertion = webIdentityTokenSource(
    {
      audience: credential.audience,
      region,
      endpoint: credential.stsEndpoint,
      durationSeconds: credential.tokenLifetimeSec,
    },
    deps.clock,
  );
  const { ClientAssertionCredential } = await import('@azure/identity');
  return new ClientAssertionCredential(credential.tenantId, clientId, () => assertion(), {
    ...(credential.authorityHost === undefined
      ? {}
      : // A configured authority is trusted as given: no instance-discovery call to the public cloud.
        { authorityHost: credential.authorityHost, disableInstanceDiscovery: true }),
    ...(ca ? { tlsOptions: { ca } } : {}),
  });
}
