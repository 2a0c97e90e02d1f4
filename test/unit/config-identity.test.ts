import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config/load.ts';
import { ConfigError } from '../../shared/runtime/errors.ts';

const TENANT = '0b6a7c1e-5d2f-4e8a-9c3b-1a2b3c4d5e6f';
const CLIENT = '7f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8';

const withClouds = (clouds: Record<string, unknown>) => ({
  version: 1,
  clouds,
  jurisdictions: { eu: { preset: 'eu-gdpr' } },
});
const gcp = (extra: Record<string, unknown>) =>
  withClouds({ gcp: { projects: [{ id: 'payments-prod-eu' }], ...extra } });
const azure = (credential: Record<string, unknown>) =>
  withClouds({ azure: { credential, subscriptions: [{ id: 'aaaaaaaa-0000-4000-8000-000000000001' }] } });
const workloadIdentity = { projectNumber: '987654321098', poolId: 'fleetward-aws', providerId: 'aws-home' };

function issuesOf(input: unknown): { path: string; message: string }[] {
  try {
    parseConfig(input);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config: gcp workload identity', () => {
  it('accepts a pool provider with an optional service account and endpoints', () => {
    const config = parseConfig(
      gcp({
        workloadIdentity: {
          ...workloadIdentity,
          projectNumber: 987654321098,
          serviceAccount: 'fleetward@fleetward-ops.iam.gserviceaccount.com',
          tokenUrl: 'http://127.0.0.1:9/v1/token',
        },
      }),
    );

    expect(config.clouds.gcp?.workloadIdentity).toEqual({
      projectNumber: '987654321098',
      poolId: 'fleetward-aws',
      providerId: 'aws-home',
      serviceAccount: 'fleetward@fleetward-ops.iam.gserviceaccount.com',
      tokenUrl: 'http://127.0.0.1:9/v1/token',
    });
  });

  it.each([
    [{ ...workloadIdentity, poolId: 'Fleetward_AWS' }, 'clouds.gcp.workloadIdentity.poolId'],
    [{ ...workloadIdentity, projectNumber: 'fleetward-ops' }, 'clouds.gcp.workloadIdentity.projectNumber'],
    [
      { ...workloadIdentity, serviceAccount: 'someone@example.com' },
      'clouds.gcp.workloadIdentity.serviceAccount',
    ],
    [{ ...workloadIdentity, privateKey: 'x' }, 'clouds.gcp.workloadIdentity.privateKey'],
    [{ poolId: 'fleetward-aws', providerId: 'aws-home' }, 'clouds.gcp.workloadIdentity.projectNumber'],
  ])('rejects %j naming %s', (wi, path) => {
    expect(issuesOf(gcp({ workloadIdentity: wi })).map((i) => i.path)).toContain(path);
  });

  it('refuses credentialsFile together with workloadIdentity, naming both', () => {
    const issues = issuesOf(gcp({ workloadIdentity, credentialsFile: 'key.json' }));

    expect(issues).toEqual([
      {
        path: 'clouds.gcp.workloadIdentity',
        message: 'expected only one of credentialsFile and workloadIdentity',
      },
    ]);
  });
});

describe('config: azure aws-federation credential', () => {
  it('accepts tenant and client and fills the Entra audience and token lifetime', () => {
    const config = parseConfig(azure({ type: 'aws-federation', tenantId: TENANT, clientId: CLIENT }));

    expect(config.clouds.azure?.credential).toEqual({
      type: 'aws-federation',
      tenantId: TENANT,
      clientId: CLIENT,
      audience: 'api://AzureADTokenExchange',
      tokenLifetimeSec: 300,
    });
  });

  it.each([
    [{ clientSecret: 'x' }, 'clouds.azure.credential.clientSecret'],
    [{ authorityHost: 'http://login.example' }, 'clouds.azure.credential.authorityHost'],
    [{ tokenLifetimeSec: 30 }, 'clouds.azure.credential.tokenLifetimeSec'],
    [{ stsRegion: 'EU Central' }, 'clouds.azure.credential.stsRegion'],
    [{ tenantId: 'contoso' }, 'clouds.azure.credential.tenantId'],
  ])('rejects %j naming %s', (extra, path) => {
    const issues = issuesOf(azure({ type: 'aws-federation', tenantId: TENANT, clientId: CLIENT, ...extra }));

    expect(issues.map((i) => i.path)).toContain(path);
  });

  it('names the new type among the credential types', () => {
    const issues = issuesOf(azure({ type: 'client-secret', tenantId: TENANT, clientId: CLIENT }));

    expect(issues[0]?.message).toMatch(/"aws-federation"/);
  });
});
