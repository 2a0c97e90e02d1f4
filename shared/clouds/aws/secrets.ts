/**
 * The SSM Parameter Store and Secrets Manager clients behind `awsSecretReaders`. Its own module,
 * imported on first use, so the clients load only when a secret is read. The SDK is imported
 * statically here: a dynamic `import()` of a CommonJS package hands a code-split bundle its
 * exports as `default` only (test/meta/dynamic-imports.test.ts).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';

/** Reads one value by name; `undefined` when the service returned none. */
export interface SecretSource {
  send(name: string): Promise<string | undefined>;
}

/** A decrypted SSM parameter (SecureString included), one client for the process. */
export function ssmParameters(): SecretSource {
  const client = new SSMClient({});
  return {
    send: async (name) =>
      (await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter?.Value,
  };
}

/** A Secrets Manager secret's string, one client for the process. */
export function secretsManagerSecrets(): SecretSource {
  const client = new SecretsManagerClient({});
  return {
    send: async (name) => (await client.send(new GetSecretValueCommand({ SecretId: name }))).SecretString,
  };
}
