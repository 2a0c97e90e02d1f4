/**
 * The app registration an `aws-federation` Azure credential signs in as: the deployment's own
 * (`FLEETWARD_AZURE_CLIENT_ID`, from the serverless param `azureClientId`) over the config's
 * `clientId`, since one app registration holds at most 20 federated credentials.
 */
import { describe, expect, it } from 'vitest';
import { awsFederationCredential, clientIdOf } from '../../shared/clouds/azure/credential.ts';
import type { AzureAwsFederation } from '../../shared/config/schema.ts';
import { ConfigError } from '../../shared/runtime/errors.ts';

const CONFIGURED = '00000000-0000-0000-0000-000000000001';
const DEPLOYMENT = '7d4c1f2e-9a3b-4c5d-8e6f-0123456789ab';

const credential: AzureAwsFederation = {
  type: 'aws-federation',
  tenantId: '00000000-0000-0000-0000-000000000000',
  clientId: CONFIGURED,
  audience: 'api://AzureADTokenExchange',
  tokenLifetimeSec: 300,
};

describe('azure aws-federation client id', () => {
  it("takes the deployment's app registration over the configured one", () => {
    expect(clientIdOf(credential, { FLEETWARD_AZURE_CLIENT_ID: DEPLOYMENT })).toBe(DEPLOYMENT);
  });

  it.each([{}, { FLEETWARD_AZURE_CLIENT_ID: '' }, { FLEETWARD_AZURE_CLIENT_ID: '  ' }])(
    'keeps the configured client id when the deployment names none (%j)',
    (env) => {
      expect(clientIdOf(credential, env)).toBe(CONFIGURED);
    },
  );

  it('refuses a value that is no client id, naming the variable, before any call', async () => {
    const env = { FLEETWARD_AZURE_CLIENT_ID: 'fleetward-prod-home', AWS_REGION: 'eu-central-1' };

    const error = await awsFederationCredential(credential, { env }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      {
        path: 'FLEETWARD_AZURE_CLIENT_ID',
        message: `expected an app registration's client id (a GUID), got "fleetward-prod-home"`,
      },
    ]);
  });
});
