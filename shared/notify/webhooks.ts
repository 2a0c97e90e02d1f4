/**
 * Resolves a Slack webhook's name (from `slack.webhooks` of fleet.yaml) to its URL at run
 * time: from the environment (local runs), an SSM SecureString parameter, or a Secrets
 * Manager secret (the URL itself or JSON `{"url": "..."}`).
 *
 * URLs read from SSM and Secrets Manager are cached per container for `ttlMs` (a rotated
 * secret is picked up within that time). A URL is never logged and never put in an error:
 * logs carry the webhook's name and its short {@link webhookId}.
 *
 * The AWS clients use the SDK's defaults, so `AWS_REGION` and `AWS_ENDPOINT_URL` (an
 * emulator such as moto) apply; the SDKs are imported on first use only.
 */

import type { z } from 'zod';
import type { SecretRef as SecretRefSchema } from '../config/schema.ts';
import { type Clock, type Log, systemClock } from '../ports.ts';
import { FleetwardError } from '../runtime/errors.ts';
import {
  awsSecretReaders,
  clearSecretCache,
  readSecret,
  SecretReadError,
  type SecretReaders,
} from '../runtime/secrets.ts';
import { webhookId } from './slack.ts';

// The AWS secret readers moved to shared/runtime/secrets.ts (the Event Grid secret uses them too).
export { awsSecretReaders, type SecretReaders };

/** Where a webhook URL is read from, as the config names it. */
export type SecretRef = z.infer<typeof SecretRefSchema>;

/** How long a URL read from SSM or Secrets Manager is reused (5 minutes). */
export const WEBHOOK_CACHE_TTL_MS = 5 * 60_000;

/** Hosts for which plain `http` is accepted: loopback only (a local sink). */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** A webhook URL could not be read or is not acceptable; the message names the webhook and source, never the URL. */
export class WebhookResolveError extends FleetwardError {
  readonly webhook: string;
  readonly source: SecretRef['from'];
  constructor(
    message: string,
    details: { webhook: string; source: SecretRef['from'] },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WebhookResolveError';
    this.webhook = details.webhook;
    this.source = details.source;
  }
}

/** Turns webhook names into URLs. */
export interface WebhookResolver {
  /** The URL of the named webhook; rejects with a {@link WebhookResolveError}. */
  resolve(webhook: string): Promise<string>;
}

export interface WebhookResolverOptions {
  logger?: Log;
  clock?: Clock;
  /** Default {@link WEBHOOK_CACHE_TTL_MS}. */
  ttlMs?: number;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Default: the SDK clients ({@link awsSecretReaders}). */
  readers?: SecretReaders;
}

/** Forgets every cached URL (the next resolve reads the source again). */
export function clearWebhookCache(): void {
  clearSecretCache();
}

/**
 * Checks that a webhook URL is one we may POST to: `https`, or `http` on a loopback host
 * (the local sink). Returns the URL; throws a {@link WebhookResolveError} that does not
 * quote it.
 */
export function assertWebhookUrl(url: string, webhook: string, source: SecretRef['from']): string {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new WebhookResolveError(`slack webhook "${webhook}" from ${source} is not a valid url`, {
      webhook,
      source,
    });
  }
  const loopbackHttp = parsed.protocol === 'http:' && LOOPBACK_HOSTS.has(parsed.hostname);
  if (parsed.protocol !== 'https:' && !loopbackHttp) {
    throw new WebhookResolveError(
      `slack webhook "${webhook}" from ${source} must be an https url (http only on loopback)`,
      { webhook, source },
    );
  }
  return parsed.href;
}

/** The URL inside a secret string: the string itself, or the `url` of a JSON object. */
function urlOfSecret(secret: string, webhook: string): string {
  const text = secret.trim();
  if (!text.startsWith('{')) return text;
  let url: unknown;
  try {
    url = (JSON.parse(text) as { url?: unknown }).url;
  } catch {
    // The cause is not attached: a JSON parse error quotes the secret.
    throw new WebhookResolveError(`slack webhook "${webhook}" from secretsmanager is not valid json`, {
      webhook,
      source: 'secretsmanager',
    });
  }
  if (typeof url !== 'string') {
    throw new WebhookResolveError(
      `slack webhook "${webhook}" from secretsmanager has no "url" string in its json`,
      { webhook, source: 'secretsmanager' },
    );
  }
  return url;
}

/** Creates a resolver for the configured webhooks (see the module comment for sources and caching). */
export function createWebhookResolver(
  webhooks: Record<string, SecretRef>,
  options: WebhookResolverOptions = {},
): WebhookResolver {
  const clock = options.clock ?? systemClock;
  const ttlMs = options.ttlMs ?? WEBHOOK_CACHE_TTL_MS;
  const env = options.env ?? process.env;

  return {
    async resolve(webhook) {
      const ref = webhooks[webhook];
      if (!ref) {
        throw new WebhookResolveError(`no slack webhook named "${webhook}" is configured`, {
          webhook,
          source: 'env',
        });
      }
      // One reader and one cache for every secret (`readSecret`); env is read every time.
      let secret: string;
      try {
        secret = await readSecret(ref, {
          clock,
          ttlMs,
          env,
          ...(options.readers ? { readers: options.readers } : {}),
        });
      } catch (error) {
        if (!(error instanceof SecretReadError)) throw error;
        // Reworded to name the webhook; the source's error class is kept, its text (which may quote the secret) is not.
        const cause = error.cause;
        const message =
          cause === undefined
            ? `slack webhook "${webhook}" from ${ref.from} is empty or missing`
            : `cannot read slack webhook "${webhook}" from ${ref.from} (${cause instanceof Error ? cause.name : 'Error'})`;
        throw new WebhookResolveError(message, { webhook, source: ref.from }, { cause: error });
      }
      const url = assertWebhookUrl(
        ref.from === 'secretsmanager' ? urlOfSecret(secret, webhook) : secret,
        webhook,
        ref.from,
      );
      options.logger?.debug('Slack webhook resolved', {
        webhook,
        source: ref.from,
        webhookId: webhookId(url),
      });
      return url;
    },
  };
}
