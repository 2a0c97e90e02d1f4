/**
 * GCP from AWS with no stored secret, end to end with the real client library:
 * google-auth-library's `AwsClient` (loaded from the `external_account` configuration
 * Fleetward generates) signs an STS `GetCallerIdentity` request with the role credentials Lambda
 * puts in the environment, exchanges it at the Google STS fake (which decodes the subject token,
 * checks its shape and recomputes the SigV4 signature), optionally impersonates a service
 * account through the IAM Credentials fake, and the resulting token authenticates a Cloud
 * Resource Manager call (Fleetward's project directory) at the CRM fake, which accepts only
 * tokens the STS fake issued.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoogleAuth } from 'google-gax';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { googleTokens } from '../../shared/clouds/gcp/auth.ts';
import { gcpExternalAccountConfig, googleAuthOptions } from '../../shared/clouds/gcp/federation.ts';
import { createProjectDirectory } from '../../shared/clouds/gcp/projects.ts';
import { GcpConfig } from '../../shared/config/schema.ts';
import type { Log } from '../../shared/ports.ts';
import { CloudApiError } from '../../shared/runtime/errors.ts';
import { type CrmFake, startCrmFake } from '../sandbox/crm-fake.ts';
import { type GoogleStsFake, startGoogleStsFake } from '../sandbox/google-sts-fake.ts';

const PROJECT = 'payments-prod-eu';
const PROJECT_NUMBER = '424242424242';
const POOL_PROJECT_NUMBER = '987654321098';
const AUDIENCE = `//iam.googleapis.com/projects/${POOL_PROJECT_NUMBER}/locations/global/workloadIdentityPools/fleetward-aws/providers/aws-home`;
const SERVICE_ACCOUNT = 'fleetward@fleetward-ops.iam.gserviceaccount.com';
const CALLER = 'arn:aws:sts::123456789012:assumed-role/fleetward-discover/fleetward-discover-fn';
// Obviously fake test credentials (the fakes accept nothing else).
const AWS_KEY = {
  id: 'ASIATESTFLEETWARD001',
  secret: 'test-secret-not-a-real-key',
  session: 'test-session-token',
};

const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

let dir: string;
let sts: GoogleStsFake;
let crm: CrmFake;
let decoy: Server;
let decoyHits = 0;
const bearers: (string | undefined)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-fed-gcp-'));
  sts = await startGoogleStsFake({
    audience: AUDIENCE,
    principals: [{ accessKeyId: AWS_KEY.id, secretAccessKey: AWS_KEY.secret, arn: CALLER }],
    impersonation: { [SERVICE_ACCOUNT]: ['arn:aws:iam::123456789012:role/fleetward-discover'] },
  });
  crm = await startCrmFake(
    { [PROJECT]: PROJECT_NUMBER },
    {
      acceptToken: (bearer) => {
        bearers.push(bearer);
        return bearer !== undefined && sts.issued.has(bearer);
      },
    },
  );
  // A decoy token endpoint named by a decoy credentials file: anything that read the file would call it.
  decoy = createServer((req, res) => {
    decoyHits++;
    req.resume();
    res.writeHead(500).end();
  });
  await new Promise<void>((resolve) => decoy.listen(0, '127.0.0.1', resolve));
  writeFileSync(
    join(dir, 'decoy-adc.json'),
    JSON.stringify({
      type: 'authorized_user',
      client_id: 'decoy-client',
      client_secret: 'decoy-secret',
      refresh_token: 'decoy-refresh',
      token_uri: `http://127.0.0.1:${(decoy.address() as AddressInfo).port}/token`,
    }),
  );
});

afterAll(async () => {
  await crm?.stop();
  await sts?.stop();
  await new Promise<void>((resolve) => (decoy ? decoy.close(() => resolve()) : resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  // The function role's credentials, as Lambda sets them; a key file that must never be read.
  vi.stubEnv('AWS_ACCESS_KEY_ID', AWS_KEY.id);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', AWS_KEY.secret);
  vi.stubEnv('AWS_SESSION_TOKEN', AWS_KEY.session);
  vi.stubEnv('AWS_REGION', 'eu-west-1');
  vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', join(dir, 'decoy-adc.json'));
  sts.exchanges.length = 0;
  sts.impersonations.length = 0;
  bearers.length = 0;
  decoyHits = 0;
});

afterEach(() => {
  vi.unstubAllEnvs();
});

function config(workloadIdentity: Record<string, unknown> = {}): GcpConfig {
  return GcpConfig.parse({
    resourceManagerEndpoint: crm.url,
    maxAttempts: 1,
    workloadIdentity: {
      projectNumber: POOL_PROJECT_NUMBER,
      poolId: 'fleetward-aws',
      providerId: 'aws-home',
      tokenUrl: `${sts.url}/v1/token`,
      ...workloadIdentity,
    },
    projects: [{ id: PROJECT }],
  });
}

describe('gcp workload identity federation from aws', () => {
  it('generates the documented external_account configuration, with nothing secret in it', () => {
    const generated = gcpExternalAccountConfig(
      config({ serviceAccount: SERVICE_ACCOUNT, tokenUrl: undefined, impersonationEndpoint: undefined }),
    );

    expect(generated).toEqual({
      type: 'external_account',
      audience: AUDIENCE,
      subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
      token_url: 'https://sts.googleapis.com/v1/token',
      credential_source: {
        environment_id: 'aws1',
        regional_cred_verification_url:
          'https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15',
      },
      service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${SERVICE_ACCOUNT}:generateAccessToken`,
    });
    expect(JSON.stringify(generated)).not.toMatch(/private_key|client_secret|client_id|refresh_token/);
  });

  it('exchanges a signed GetCallerIdentity for a federated token that Resource Manager accepts', async () => {
    const directory = createProjectDirectory(config(), { logger: silent });

    await expect(directory.projectIdOf(PROJECT_NUMBER)).resolves.toBe(PROJECT);

    expect(sts.exchanges).toHaveLength(1);
    const [exchange] = sts.exchanges;
    expect(exchange?.error).toBeUndefined();
    expect(exchange?.form).toMatchObject({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      audience: AUDIENCE,
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
      scope: 'https://www.googleapis.com/auth/cloud-platform.read-only',
    });
    expect(exchange?.subject).toMatchObject({
      url: 'https://sts.eu-west-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15',
      method: 'POST',
      headers: {
        host: 'sts.eu-west-1.amazonaws.com',
        'x-goog-cloud-target-resource': AUDIENCE,
        'x-amz-security-token': AWS_KEY.session,
        authorization: expect.stringMatching(
          new RegExp(
            `^AWS4-HMAC-SHA256 Credential=${AWS_KEY.id}/\\d{8}/eu-west-1/sts/aws4_request, SignedHeaders=`,
          ),
        ),
      },
    });
    // The secret key itself never leaves the function: only its signature does.
    expect(JSON.stringify(exchange)).not.toContain(AWS_KEY.secret);
    expect(exchange?.principal).toBe(CALLER);
    expect(bearers).toHaveLength(1);
    expect(sts.issued.get(bearers[0]!)?.kind).toBe('federated');
    expect(decoyHits).toBe(0);
  });

  it('impersonates the service account when one is configured', async () => {
    const directory = createProjectDirectory(
      config({ serviceAccount: SERVICE_ACCOUNT, impersonationEndpoint: sts.url }),
      { logger: silent },
    );

    await expect(directory.projectIdOf(PROJECT_NUMBER)).resolves.toBe(PROJECT);

    // STS is asked for cloud-platform (generateAccessToken needs it), the service account for our scope.
    expect(sts.exchanges[0]?.form.scope).toBe('https://www.googleapis.com/auth/cloud-platform');
    expect(sts.impersonations).toEqual([
      {
        serviceAccount: SERVICE_ACCOUNT,
        scope: ['https://www.googleapis.com/auth/cloud-platform.read-only'],
      },
    ]);
    expect(sts.issued.get(bearers[0]!)).toMatchObject({
      kind: 'service-account',
      principal: SERVICE_ACCOUNT,
    });
    expect(decoyHits).toBe(0);
  });

  it('gives gax and Cloud Storage clients the same configuration through GoogleAuth', async () => {
    const auth = new GoogleAuth({
      scopes: ['https://www.googleapis.com/auth/cloud-platform'],
      ...googleAuthOptions(config()),
    });

    const token = await auth.getAccessToken();

    expect(sts.issued.get(token ?? '')?.kind).toBe('federated');
    expect(sts.exchanges[0]?.principal).toBe(CALLER);
    expect(decoyHits).toBe(0);
  });

  it('is refused when the signature was made with another secret, and Resource Manager is never called', async () => {
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'another-test-secret');
    const directory = createProjectDirectory(config(), { logger: silent });

    const error = await directory.projectIdOf(PROJECT_NUMBER).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CloudApiError);
    expect((error as Error).message).toMatch(/signature does not match/);
    expect(sts.exchanges[0]?.error).toMatch(/signature/);
    expect(bearers).toEqual([]);
  });

  it('is refused when the federated principal may not impersonate the service account', async () => {
    const directory = createProjectDirectory(
      config({
        serviceAccount: 'other@fleetward-ops.iam.gserviceaccount.com',
        impersonationEndpoint: sts.url,
      }),
      { logger: silent },
    );

    const error = await directory.projectIdOf(PROJECT_NUMBER).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(CloudApiError);
    expect(sts.impersonations.map((i) => i.error)).toEqual(['PERMISSION_DENIED']);
    expect(bearers).toEqual([]);
  });

  it('names the missing AWS variables instead of looking for a metadata server', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', '');
    vi.stubEnv('AWS_REGION', '');
    vi.stubEnv('AWS_DEFAULT_REGION', '');

    const error = await googleTokens(config(), 'https://www.googleapis.com/auth/cloud-platform')().catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(CloudApiError);
    expect((error as Error).message).toMatch(/AWS_ACCESS_KEY_ID, AWS_REGION not set/);
    expect(sts.exchanges).toHaveLength(0);
  });
});
