/**
 * Azure from AWS with no stored secret, end to end with the real client libraries:
 * `@aws-sdk/client-sts` asks the AWS proxy (moto behind it; the proxy shims
 * `GetWebIdentityToken`, which moto lacks) for a JWT signed by the local OIDC issuer for the
 * assumed role; `@azure/identity`'s `ClientAssertionCredential` (MSAL) presents it to the
 * Entra fake over https, which verifies it against the issuer's JWKS and the app's federated
 * identity credential; the Entra access token then authenticates `ContainerServiceClient`
 * against the ARM fake, which accepts only that token.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { awsFederationCredential } from '../../shared/clouds/azure/credential.ts';
import { createDiscovery } from '../../shared/clouds/azure/discovery.ts';
import { type AzureAwsFederation, AzureConfig } from '../../shared/config/schema.ts';
import type { Log } from '../../shared/ports.ts';
import { ConfigError } from '../../shared/runtime/errors.ts';
import { type ArmFake, aksCluster, startArmFake } from '../sandbox/arm-fake.ts';
import { type AwsProxy, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { type EntraFake, startEntraFake } from '../sandbox/entra-fake.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { type JwksServer, startJwksServer } from '../sandbox/oidc.ts';
import { webIdentityTokenHandler } from '../sandbox/sts-web-identity.ts';

const TENANT = '0b6a7c1e-5d2f-4e8a-9c3b-1a2b3c4d5e6f';
const CLIENT = '7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8';
const OTHER_CLIENT = '11111111-2222-4333-8444-555555555555';
const SUBSCRIPTION = 'aaaaaaaa-0000-4000-8000-0000000000f1';
const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/fleetward-discover`;
const ARM_TOKEN = 'entra-issued-arm-token';
const AUDIENCE = 'api://AzureADTokenExchange';

const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

let dir: string;
let moto: MotoServer;
let issuer: JwksServer;
let proxy: AwsProxy;
let entra: EntraFake;
let arm: ArmFake;
let roleCredentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-fed-azure-'));
  moto = await startMoto();
  issuer = await startJwksServer();
  proxy = await startAwsProxy({ upstream: moto.url, webIdentityIssuer: issuer });
  const sts = new STSClient({
    region: 'eu-central-1',
    endpoint: moto.url,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const assumed = await sts.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'fleetward' }));
  sts.destroy();
  const c = assumed.Credentials!;
  roleCredentials = {
    AccessKeyId: c.AccessKeyId!,
    SecretAccessKey: c.SecretAccessKey!,
    SessionToken: c.SessionToken!,
  };
  const certDir = join(dir, 'tls');
  entra = await startEntraFake({
    certDir,
    apps: [
      {
        tenantId: TENANT,
        clientId: CLIENT,
        accessToken: ARM_TOKEN,
        federatedCredentials: [{ issuer: issuer.issuer, subject: ROLE, audiences: [AUDIENCE] }],
      },
      {
        // Trusts another role only: the function's token must not get in.
        tenantId: TENANT,
        clientId: OTHER_CLIENT,
        accessToken: 'never-issued',
        federatedCredentials: [
          {
            issuer: issuer.issuer,
            subject: `arn:aws:iam::${ACCOUNT}:role/someone-else`,
            audiences: [AUDIENCE],
          },
        ],
      },
    ],
  });
  arm = await startArmFake({ certDir, token: ARM_TOKEN });
  arm.setClusters(SUBSCRIPTION, [
    aksCluster({ subscriptionId: SUBSCRIPTION, name: 'aks-fed', location: 'westeurope' }),
  ]);
}, 60_000);

afterAll(async () => {
  await arm?.stop();
  await entra?.stop();
  await proxy?.stop();
  await issuer?.close();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  // The function's role, as Lambda hands it over; and secrets that must never be read.
  vi.stubEnv('AWS_ACCESS_KEY_ID', roleCredentials.AccessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', roleCredentials.SecretAccessKey);
  vi.stubEnv('AWS_SESSION_TOKEN', roleCredentials.SessionToken);
  vi.stubEnv('AWS_REGION', 'eu-central-1');
  vi.stubEnv('AWS_PROFILE', '');
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(dir, 'absent-credentials'));
  vi.stubEnv('AWS_CONFIG_FILE', join(dir, 'absent-config'));
  vi.stubEnv('AZURE_CLIENT_SECRET', 'must-never-be-sent');
  vi.stubEnv('AZURE_CLIENT_CERTIFICATE_PATH', join(dir, 'absent-certificate.pem'));
  vi.stubEnv('AZURE_FEDERATED_TOKEN_FILE', join(dir, 'absent-token'));
  entra.requests.length = 0;
  proxy.log.clear();
});

afterEach(() => {
  vi.unstubAllEnvs();
});

function credential(overrides: Record<string, unknown> = {}): AzureAwsFederation {
  const parsed = AzureConfig.parse({
    endpoint: arm.endpoint,
    caFile: arm.caFile,
    credential: {
      type: 'aws-federation',
      tenantId: TENANT,
      clientId: CLIENT,
      authorityHost: entra.url,
      authorityCaFile: entra.caFile,
      stsEndpoint: proxy.url,
      ...overrides,
    },
    subscriptions: [{ id: SUBSCRIPTION }],
  });
  return parsed.credential as AzureAwsFederation;
}

function config(overrides: Record<string, unknown> = {}): AzureConfig {
  return AzureConfig.parse({
    endpoint: arm.endpoint,
    caFile: arm.caFile,
    credential: credential(overrides),
    maxAttempts: 1,
    subscriptions: [{ id: SUBSCRIPTION }],
  });
}

/** POSTs a form to the https Entra fake, trusting its CA. */
function postForm(url: string, body: URLSearchParams): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: readFileSync(entra.caFile, 'utf8'),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(body.toString());
  });
}

const webIdentityCalls = () => proxy.requests().filter((r) => r.operation === 'GetWebIdentityToken');

describe('azure federation from aws (GetWebIdentityToken -> ClientAssertionCredential)', () => {
  it('discovers AKS with an Entra token obtained from the AWS role, no secret anywhere', async () => {
    const outcome = await createDiscovery(config(), { logger: silent }).discover();

    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters.map((c) => c.name)).toEqual(['aks-fed']);
    // STS: one regional call, signed with the role's credentials.
    expect(webIdentityCalls()).toHaveLength(1);
    expect(webIdentityCalls()[0]).toMatchObject({ region: 'eu-central-1', status: 200, service: 'sts' });
    expect(webIdentityCalls()[0]?.accessKeyId).toBe(roleCredentials.AccessKeyId);
    // Entra: a jwt-bearer client assertion, verified against the issuer's JWKS.
    expect(entra.requests).toHaveLength(1);
    const [request] = entra.requests;
    expect(request).toMatchObject({
      tenantId: TENANT,
      clientId: CLIENT,
      grantType: 'client_credentials',
      clientAssertionType: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      scope: expect.stringContaining(`${arm.endpoint}/.default`),
      clientSecret: false,
    });
    expect(request?.error).toBeUndefined();
    expect(request?.claims).toMatchObject({
      iss: issuer.issuer,
      sub: ROLE,
      aud: AUDIENCE,
      'https://sts.amazonaws.com/': { aws_account: ACCOUNT, source_region: 'eu-central-1' },
    });
    expect((request?.claims?.exp ?? 0) - (request?.claims?.iat ?? 0)).toBe(300);
  });

  it('asks STS once while its token is fresh, whatever Entra is asked for', async () => {
    const cred = await awsFederationCredential(credential());

    const arm1 = await cred.getToken(`${arm.endpoint}/.default`);
    const other = await cred.getToken('https://other.example/.default');

    expect(arm1?.token).toBe(ARM_TOKEN);
    expect(other?.token).toBe(ARM_TOKEN);
    expect(entra.requests).toHaveLength(2);
    expect(webIdentityCalls()).toHaveLength(1);
  });

  it('asks STS again once its token is about to expire', async () => {
    let now = Date.now();
    // STS and the credential read one clock, so "about to expire" means the same to both.
    const restore = proxy.override(
      'GetWebIdentityToken',
      webIdentityTokenHandler(issuer, [], () => now),
    );
    try {
      const cred = await awsFederationCredential(credential({ tokenLifetimeSec: 120 }), { clock: () => now });

      await cred.getToken(`${arm.endpoint}/.default`);
      now += 30_000; // 90 s left: kept
      await cred.getToken('https://second.example/.default');
      now += 31_000; // 59 s left: under the one-minute margin
      await cred.getToken('https://third.example/.default');
    } finally {
      // Back to the shim the proxy was started with (the override replaced it).
      restore();
      proxy.override('GetWebIdentityToken', webIdentityTokenHandler(issuer));
    }

    expect(entra.requests).toHaveLength(3);
    expect(webIdentityCalls()).toHaveLength(2);
    expect(entra.requests.map((r) => r.error)).toEqual([undefined, undefined, undefined]);
  });

  it('is refused by an app whose federated credential trusts another role, and ARM is never called with a token', async () => {
    const armBefore = arm.log.entries.length;

    const outcome = await createDiscovery(config({ clientId: OTHER_CLIENT }), { logger: silent }).discover();

    expect(outcome.clusters).toEqual([]);
    expect(outcome.failures).toHaveLength(1);
    expect(outcome.failures[0]?.error.message).toMatch(/AADSTS70021/);
    expect(entra.requests.map((r) => r.error)).toContain('AADSTS70021');
    expect(arm.log.entries.length).toBe(armBefore);
  });

  it('rejects a forged assertion (a key the issuer does not publish) at the Entra fake', async () => {
    const forged = await issuer.forge({ iss: issuer.issuer, sub: ROLE, aud: AUDIENCE });
    const body = new URLSearchParams({
      client_id: CLIENT,
      scope: `${arm.endpoint}/.default`,
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: forged,
    });
    const res = await postForm(`${entra.url}/${TENANT}/oauth2/v2.0/token`, body);

    expect(res.status).toBe(400);
    expect((JSON.parse(res.body) as { error_codes: number[] }).error_codes).toEqual([70021]);
    expect(entra.requests.at(-1)?.claims).toBeUndefined();
  });

  it('fails before any call without a region for the regional STS endpoint', async () => {
    vi.stubEnv('AWS_REGION', '');
    vi.stubEnv('AWS_DEFAULT_REGION', '');

    const error = await awsFederationCredential(credential()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]?.path).toBe('clouds.azure.credential.stsRegion');
    expect(webIdentityCalls()).toHaveLength(0);
  });
});
