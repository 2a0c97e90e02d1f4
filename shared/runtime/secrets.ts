/**
 * Reads a secret string named by a `SecretRef` of fleet.yaml: an environment variable
 * (local runs), an SSM SecureString parameter, or a Secrets Manager secret string. Used for
 * the Slack webhook URLs (`shared/notify/webhooks.ts`) and the Event Grid shared secret.
 *
 * Values read from SSM and Secrets Manager are cached per container for `ttlMs` (a rotated
 * secret is picked up within that time); environment variables are read every time. A value
 * is never logged and never put in an error. The AWS SDKs are imported on first use only and
 * use the SDK's defaults (`AWS_REGION`, `AWS_ENDPOINT_URL`).
 */
import type { z } from 'zod';
import type { SecretSource } from '../clouds/aws/secrets.ts';
import type { SecretRef as SecretRefSchema } from '../config/schema.ts';
import { type Clock, systemClock } from '../ports.ts';
import { FleetwardError } from './errors.ts';

/** Where a secret is read from, as the config names it. */
export type SecretRef = z.infer<typeof SecretRefSchema>;

/** How long a value read from SSM or Secrets Manager is reused (5 minutes). */
export const SECRET_CACHE_TTL_MS = 5 * 60_000;

/** Reads secret strings from AWS; injectable for tests, the real SDK clients by default. */
export interface SecretReaders {
  /** The decrypted value of an SSM parameter, or `undefined` when it has none. */
  ssmParameter(name: string): Promise<string | undefined>;
  /** The `SecretString` of a Secrets Manager secret, or `undefined` when it has none. */
  secretString(name: string): Promise<string | undefined>;
}

/** A secret could not be read or is empty; the message names the source and name, never the value. */
export class SecretReadError extends FleetwardError {
  readonly source: SecretRef['from'];
  readonly secretName: string;
  constructor(message: string, ref: SecretRef, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SecretReadError';
    this.source = ref.from;
    this.secretName = ref.name;
  }
}

let sdkReaders: SecretReaders | undefined;

/** Secret readers backed by `@aws-sdk/client-ssm` and `@aws-sdk/client-secrets-manager`, clients built once. */
export function awsSecretReaders(): SecretReaders {
  sdkReaders ??= (() => {
    let ssm: Promise<SecretSource> | undefined;
    let sm: Promise<SecretSource> | undefined;
    return {
      async ssmParameter(name) {
        ssm ??= import('../clouds/aws/secrets.ts').then((m) => m.ssmParameters());
        return (await ssm).send(name);
      },
      async secretString(name) {
        sm ??= import('../clouds/aws/secrets.ts').then((m) => m.secretsManagerSecrets());
        return (await sm).send(name);
      },
    };
  })();
  return sdkReaders;
}

/** Options of {@link readSecret}. */
export interface ReadSecretOptions {
  clock?: Clock;
  /** Default {@link SECRET_CACHE_TTL_MS}. */
  ttlMs?: number;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Default: the SDK clients ({@link awsSecretReaders}). */
  readers?: SecretReaders;
}

const cache = new Map<string, { value: string; expiresAt: number }>();

/** Forgets every cached secret (the next read asks the source again). */
export function clearSecretCache(): void {
  cache.clear();
}

/**
 * The secret string `ref` names, trimmed. Rejects with a {@link SecretReadError} when it
 * cannot be read or is missing or empty.
 */
export async function readSecret(ref: SecretRef, options: ReadSecretOptions = {}): Promise<string> {
  const clock = options.clock ?? systemClock;
  const key = `${ref.from}:${ref.name}`;
  const now = clock.now().getTime();
  const hit = ref.from === 'env' ? undefined : cache.get(key);
  if (hit && hit.expiresAt > now) return hit.value;
  let value: string | undefined;
  if (ref.from === 'env') {
    value = (options.env ?? process.env)[ref.name];
  } else {
    const readers = options.readers ?? awsSecretReaders();
    try {
      value =
        ref.from === 'ssm' ? await readers.ssmParameter(ref.name) : await readers.secretString(ref.name);
    } catch (error) {
      const kind = error instanceof Error ? error.name : 'Error';
      throw new SecretReadError(`cannot read secret "${ref.name}" from ${ref.from} (${kind})`, ref, {
        cause: error,
      });
    }
  }
  if (value === undefined || value.trim() === '') {
    throw new SecretReadError(`secret "${ref.name}" from ${ref.from} is empty or missing`, ref);
  }
  const trimmed = value.trim();
  if (ref.from !== 'env')
    cache.set(key, { value: trimmed, expiresAt: now + (options.ttlMs ?? SECRET_CACHE_TTL_MS) });
  return trimmed;
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../clouds/permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'function',
    capability: 'secrets',
    permission: 'ssm:GetParameter',
    calls: ['ssm:GetParameter'],
    why: 'read Slack webhooks and endpoint tokens kept as SecureString parameters',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'secrets',
    permission: 'secretsmanager:GetSecretValue',
    calls: ['secretsmanager:GetSecretValue'],
    why: 'read Slack webhooks and endpoint tokens kept in Secrets Manager',
  },
];
