/**
 * Workload Identity Federation from AWS into GCP, with no key file and no secret.
 *
 * `gcpExternalAccountConfig` turns `clouds.gcp.workloadIdentity` into the `external_account`
 * configuration Google documents for AWS workloads
 * (https://cloud.google.com/iam/docs/workload-identity-federation-with-other-clouds): the
 * credential source `aws1` makes google-auth-library's `AwsClient` sign an STS
 * `GetCallerIdentity` request with the function's own AWS credentials and hand that signed
 * request (never the secret key) to Google's STS, which checks it with AWS and answers a
 * federated access token; with `serviceAccount`, that token is exchanged again for the service
 * account's through IAM Credentials `generateAccessToken`.
 *
 * Where the AWS credentials come from: the library reads `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` and the region from `AWS_REGION` /
 * `AWS_DEFAULT_REGION`, which Lambda sets for the function's role. The configuration carries
 * no metadata-server URLs (`region_url`, `url`), so nothing ever calls the EC2 instance metadata
 * service; outside Lambda, export the role's credentials into those variables.
 */
import type { GcpConfig, GcpWorkloadIdentity } from '../../config/schema.ts';
import { CloudApiError } from '../../runtime/errors.ts';
import type { PermissionGrant } from '../permissions.ts';

/** Google's STS token endpoint. */
export const GOOGLE_STS_TOKEN_URL = 'https://sts.googleapis.com/v1/token';
/** IAM Service Account Credentials API. */
export const IAM_CREDENTIALS_ENDPOINT = 'https://iamcredentials.googleapis.com';
/** The subject token type of an AWS-signed `GetCallerIdentity` request. */
export const AWS_SUBJECT_TOKEN_TYPE = 'urn:ietf:params:aws:token-type:aws4_request';
/** The regional STS URL the signed request names; `{region}` is the function's region. */
export const AWS_REGIONAL_CRED_VERIFICATION_URL =
  'https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15';

/**
 * The grant the impersonation call needs, held in the member project by the federated principal
 * (`roles/iam.workloadIdentityUser` on the service account carries it).
 */
export const PERMISSIONS: readonly PermissionGrant[] = [
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'identity',
    permission: 'iam.serviceAccounts.getAccessToken',
    calls: ['iamcredentials:generateAccessToken'],
    why: 'lets the federated AWS function role act as the Fleetward service account, so no service-account key exists',
  },
];

/** The `external_account` JSON Google's client libraries and `gcloud` read. */
export interface ExternalAccountConfig {
  type: 'external_account';
  audience: string;
  subject_token_type: typeof AWS_SUBJECT_TOKEN_TYPE;
  token_url: string;
  credential_source: {
    environment_id: 'aws1';
    regional_cred_verification_url: string;
  };
  service_account_impersonation_url?: string;
}

/** `//iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>`. */
export function workloadIdentityAudience(wi: GcpWorkloadIdentity): string {
  return `//iam.googleapis.com/projects/${wi.projectNumber}/locations/global/workloadIdentityPools/${wi.poolId}/providers/${wi.providerId}`;
}

/**
 * The `external_account` configuration for `clouds.gcp.workloadIdentity` (what `fleetward`
 * prints for onboarding, and what Fleetward itself loads). It holds identifiers only: no key,
 * no secret, nothing that needs protecting.
 */
export function gcpExternalAccountConfig(gcp: Pick<GcpConfig, 'workloadIdentity'>): ExternalAccountConfig {
  const wi = gcp.workloadIdentity;
  if (!wi) {
    throw new CloudApiError('gcp workload identity is not configured (clouds.gcp.workloadIdentity)', {
      cloud: 'gcp',
      operation: 'GetAccessToken',
      retryable: false,
    });
  }
  const impersonation = (wi.impersonationEndpoint ?? IAM_CREDENTIALS_ENDPOINT).replace(/\/+$/, '');
  return {
    type: 'external_account',
    audience: workloadIdentityAudience(wi),
    subject_token_type: AWS_SUBJECT_TOKEN_TYPE,
    token_url: wi.tokenUrl ?? GOOGLE_STS_TOKEN_URL,
    credential_source: {
      environment_id: 'aws1',
      regional_cred_verification_url: AWS_REGIONAL_CRED_VERIFICATION_URL,
    },
    ...(wi.serviceAccount
      ? {
          service_account_impersonation_url: `${impersonation}/v1/projects/-/serviceAccounts/${wi.serviceAccount}:generateAccessToken`,
        }
      : {}),
  };
}

/**
 * Fails early, naming the variables, when the AWS identity the library signs with is not in the
 * environment (the library itself would otherwise look for a metadata-server URL that the
 * generated configuration deliberately does not have).
 */
export function assertAwsEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  const missing: string[] = [];
  if (!env.AWS_ACCESS_KEY_ID) missing.push('AWS_ACCESS_KEY_ID');
  if (!env.AWS_SECRET_ACCESS_KEY) missing.push('AWS_SECRET_ACCESS_KEY');
  if (!env.AWS_REGION && !env.AWS_DEFAULT_REGION) missing.push('AWS_REGION');
  if (missing.length > 0) {
    throw new CloudApiError(
      `gcp workload identity needs the aws role's credentials in the environment, as lambda sets them: ${missing.join(', ')} not set`,
      { cloud: 'gcp', operation: 'GetAccessToken', retryable: false },
    );
  }
}

/**
 * Options for Google's clients (`GoogleAuth`, gax clients, Cloud Storage) from the GCP config:
 * the generated `external_account` configuration for `workloadIdentity`, the file for
 * `credentialsFile`, otherwise nothing (application default credentials).
 */
export function googleAuthOptions(gcp: Pick<GcpConfig, 'credentialsFile' | 'workloadIdentity'> | undefined): {
  keyFilename?: string;
  credentials?: ExternalAccountConfig;
} {
  if (gcp?.workloadIdentity) return { credentials: gcpExternalAccountConfig(gcp) };
  if (gcp?.credentialsFile) return { keyFilename: gcp.credentialsFile };
  return {};
}
