/**
 * The AWS AppConfig data plane, which moto lacks (its AppConfig `CreateEnvironment` is "Not yet
 * implemented"): answered by the AWS proxy (`aws-proxy.ts`, routes `APPCONFIGDATA_ROUTES`) through
 * its `override` hook. Shapes follow the AppConfig Data API reference (see
 * test/fixtures/aws/README.md, "AppConfig data plane"):
 *
 * - `StartConfigurationSession`: `POST /configurationsessions` with a JSON body naming
 *   `ApplicationIdentifier`, `EnvironmentIdentifier`, `ConfigurationProfileIdentifier` (and
 *   optionally `RequiredMinimumPollIntervalInSeconds`, 15..86400); answers 201
 *   `{"InitialConfigurationToken": "..."}`.
 * - `GetLatestConfiguration`: `GET /configuration?configuration_token=...`; answers 200 with the
 *   configuration as the body and the headers `Next-Poll-Configuration-Token`,
 *   `Next-Poll-Interval-In-Seconds`, `Content-Type` and `Version-Label`; the body is empty when
 *   the session already received the latest version. Each token is good for one call: a reused
 *   or unknown token is a `BadRequestException`.
 * - Unknown application/environment/profile (nothing published there): `ResourceNotFoundException`.
 *
 * Tests deploy a new version with {@link AppConfigFake.publish}. Not modelled: the minimum poll
 * interval is answered but not enforced, tokens do not expire after 24 hours, and deployment
 * strategies (a published version is deployed at once, to every session).
 */
import { randomUUID } from 'node:crypto';
import type { AwsProxy, ProxiedRequest, ProxyResponse } from './aws-proxy.ts';

/** The application, environment and configuration profile a configuration is deployed to. */
export interface AppConfigTarget {
  application: string;
  environment: string;
  profile: string;
}

export interface AppConfigFake {
  /** Deploys `content` as the newest version of `target`; answers its version number (1, 2...). */
  publish(target: AppConfigTarget, content: string, contentType?: string): number;
  /** Calls answered so far, per operation. */
  readonly calls: { StartConfigurationSession: number; GetLatestConfiguration: number };
  /** Answers the two operations on `proxy`; returns a remover. */
  attach(proxy: AwsProxy): () => void;
}

interface Version {
  number: number;
  content: Buffer;
  contentType: string;
}

interface Session {
  key: string;
  /** The version this session received last (0: none yet). */
  seen: number;
  interval: number;
}

/** AppConfig's default poll interval when the session sets none. */
const DEFAULT_POLL_INTERVAL_SECONDS = 60;

const keyOf = (t: AppConfigTarget) => `${t.application}\u0000${t.environment}\u0000${t.profile}`;

/** An AppConfig Data error: `x-amzn-errortype` names it, the body carries `Message`. */
function error(status: number, type: string, message: string, extra: Record<string, unknown> = {}) {
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'x-amzn-errortype': type,
      'x-amzn-requestid': randomUUID(),
    },
    body: JSON.stringify({ Message: message, ...extra }),
  } satisfies ProxyResponse;
}

export function createAppConfigFake(): AppConfigFake {
  const versions = new Map<string, Version[]>();
  const sessions = new Map<string, Session>();
  const calls = { StartConfigurationSession: 0, GetLatestConfiguration: 0 };

  function start(req: ProxiedRequest): ProxyResponse {
    calls.StartConfigurationSession++;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(req.body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      return error(400, 'BadRequestException', 'request body is not JSON', { Reason: 'InvalidParameters' });
    }
    const ids = ['ApplicationIdentifier', 'EnvironmentIdentifier', 'ConfigurationProfileIdentifier'] as const;
    const missing = ids.filter((k) => typeof body[k] !== 'string' || body[k] === '');
    if (missing.length > 0) {
      return error(400, 'BadRequestException', `missing ${missing.join(', ')}`, {
        Reason: 'InvalidParameters',
      });
    }
    const interval = body.RequiredMinimumPollIntervalInSeconds;
    if (interval !== undefined && (typeof interval !== 'number' || interval < 15 || interval > 86_400)) {
      return error(400, 'BadRequestException', 'RequiredMinimumPollIntervalInSeconds must be 15..86400', {
        Reason: 'InvalidParameters',
      });
    }
    const key = keyOf({
      application: body.ApplicationIdentifier as string,
      environment: body.EnvironmentIdentifier as string,
      profile: body.ConfigurationProfileIdentifier as string,
    });
    if (!versions.has(key)) {
      return error(
        404,
        'ResourceNotFoundException',
        'no deployed configuration for this application, environment and profile',
        {
          ResourceType: 'Configuration',
        },
      );
    }
    const token = randomUUID();
    sessions.set(token, {
      key,
      seen: 0,
      interval: typeof interval === 'number' ? interval : DEFAULT_POLL_INTERVAL_SECONDS,
    });
    return {
      status: 201,
      headers: { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID() },
      body: JSON.stringify({ InitialConfigurationToken: token }),
    };
  }

  function latest(req: ProxiedRequest): ProxyResponse {
    calls.GetLatestConfiguration++;
    const token = new URL(req.url, 'http://appconfig.invalid').searchParams.get('configuration_token');
    const session = token ? sessions.get(token) : undefined;
    if (!token || !session) {
      return error(400, 'BadRequestException', 'invalid or already used configuration token', {
        Reason: 'InvalidParameters',
      });
    }
    // A token is good for one call: the answer carries the next one.
    sessions.delete(token);
    const next = randomUUID();
    const newest = versions.get(session.key)!.at(-1)!;
    const changed = session.seen !== newest.number;
    sessions.set(next, { ...session, seen: newest.number });
    return {
      status: 200,
      headers: {
        'next-poll-configuration-token': next,
        'next-poll-interval-in-seconds': String(session.interval),
        'content-type': newest.contentType,
        ...(changed ? { 'version-label': String(newest.number) } : {}),
        'x-amzn-requestid': randomUUID(),
      },
      body: changed ? newest.content : Buffer.alloc(0),
    };
  }

  return {
    calls,
    publish(target, content, contentType = 'application/json') {
      const list = versions.get(keyOf(target)) ?? [];
      const number = list.length + 1;
      list.push({ number, content: Buffer.from(content, 'utf8'), contentType });
      versions.set(keyOf(target), list);
      return number;
    },
    attach(proxy) {
      const removers = [
        proxy.override('StartConfigurationSession', start),
        proxy.override('GetLatestConfiguration', latest),
      ];
      return () => {
        for (const remove of removers) remove();
      };
    },
  };
}
