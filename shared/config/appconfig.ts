/**
 * The deployed fleet config: `fleet.yaml` as deployed to AWS AppConfig, read through Powertools
 * Parameters' AppConfig provider, validated with the same schema as the CLI, and cached; else the
 * file packaged with the function.
 *
 * - Where: `FLEETWARD_APPCONFIG_APPLICATION`, `FLEETWARD_APPCONFIG_ENVIRONMENT` and
 *   `FLEETWARD_APPCONFIG_PROFILE` name the AppConfig application, environment and configuration
 *   profile. None set: the packaged file (`FLEETWARD_CONFIG`, default `fleet.yaml`) is the config,
 *   read once per container. Some but not all set: a `ConfigError` naming the missing ones.
 * - How fresh: a fetched config is reused for `FLEETWARD_CONFIG_MAX_AGE` seconds (default
 *   {@link DEFAULT_CONFIG_MAX_AGE_SECONDS}, at least {@link MIN_CONFIG_MAX_AGE_SECONDS}: AppConfig
 *   refuses polls more frequent than the session's minimum poll interval, which is set to match).
 *   Within that age no call is made; after it, one `GetLatestConfiguration` (which answers an
 *   empty body when nothing changed).
 * - What: the deployment uploads the validated config as JSON; YAML is accepted too (YAML reads
 *   JSON). Relative paths in it are relative to the packaged file's directory.
 * - When AppConfig cannot be reached (or answers no configuration): a config fetched before is
 *   kept, with a warning; on the first fetch the packaged file is used, with a warning. Either way
 *   AppConfig is asked again after another max age, never on every invocation.
 * - When AppConfig answers an invalid config: every read fails with the `ConfigError` naming the
 *   path of each bad field (also logged), until a valid version is deployed. It never falls back
 *   to an older config or to the packaged file: a deployment that was meant to change the config
 *   must not run silently on the old one.
 */
import type { AppConfigProvider } from '@aws-lambda-powertools/parameters/appconfig';
import type { PermissionGrant } from '../clouds/permissions.ts';
import type { Log } from '../ports.ts';
import { ConfigError, errorInfo } from '../runtime/errors.ts';
import { loadConfig, parseConfigText } from './load.ts';
import type { FleetConfig } from './schema.ts';

/** Seconds a config fetched from AppConfig is reused before AppConfig is asked again. */
export const DEFAULT_CONFIG_MAX_AGE_SECONDS = 60;
/** The smallest `FLEETWARD_CONFIG_MAX_AGE`: AppConfig's smallest `RequiredMinimumPollIntervalInSeconds`. */
export const MIN_CONFIG_MAX_AGE_SECONDS = 15;
/** AppConfig's largest `RequiredMinimumPollIntervalInSeconds` (a day). */
const MAX_POLL_INTERVAL_SECONDS = 86_400;

/** The environment variables that name the AppConfig configuration. */
export const APPCONFIG_ENV = {
  application: 'FLEETWARD_APPCONFIG_APPLICATION',
  environment: 'FLEETWARD_APPCONFIG_ENVIRONMENT',
  profile: 'FLEETWARD_APPCONFIG_PROFILE',
} as const;

/** The AppConfig application, environment and configuration profile (names or ids) holding `fleet.yaml`. */
export interface AppConfigLocation {
  application: string;
  environment: string;
  profile: string;
}

/**
 * The AppConfig location the environment names, or `undefined` when it names none.
 * @throws ConfigError when only some of the three variables are set (naming the missing ones).
 */
export function appConfigLocation(env: NodeJS.ProcessEnv = process.env): AppConfigLocation | undefined {
  const entries = Object.entries(APPCONFIG_ENV).map(([key, name]) => [key, name, env[name]?.trim()] as const);
  const set = entries.filter(([, , value]) => value);
  if (set.length === 0) return undefined;
  if (set.length < entries.length) {
    throw new ConfigError(
      entries
        .filter(([, , value]) => !value)
        .map(([, name]) => ({
          path: `env.${name}`,
          message: `required when ${set.map(([, n]) => n).join(' and ')} ${set.length > 1 ? 'are' : 'is'} set`,
        })),
    );
  }
  return Object.fromEntries(entries.map(([key, , value]) => [key, value])) as unknown as AppConfigLocation;
}

/**
 * `FLEETWARD_CONFIG_MAX_AGE` in seconds (default {@link DEFAULT_CONFIG_MAX_AGE_SECONDS}).
 * @throws ConfigError when it is not a whole number of seconds of at least {@link MIN_CONFIG_MAX_AGE_SECONDS}.
 */
export function configMaxAgeSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FLEETWARD_CONFIG_MAX_AGE?.trim();
  if (!raw) return DEFAULT_CONFIG_MAX_AGE_SECONDS;
  const seconds = Number(raw);
  if (!/^\d+$/.test(raw) || seconds < MIN_CONFIG_MAX_AGE_SECONDS || seconds > MAX_POLL_INTERVAL_SECONDS) {
    throw new ConfigError([
      {
        path: 'env.FLEETWARD_CONFIG_MAX_AGE',
        message: `expected whole seconds from ${MIN_CONFIG_MAX_AGE_SECONDS} to ${MAX_POLL_INTERVAL_SECONDS}, got "${raw}"`,
      },
    ]);
  }
  return seconds;
}

/** An `AppConfigDataClient` (Powertools' `awsSdkV3Client`); this layer names no cloud SDK itself. */
export type AppConfigClient = NonNullable<
  ConstructorParameters<typeof AppConfigProvider>[0]['awsSdkV3Client']
>;

/**
 * The data client's settings when none is given: the SDK's region, endpoint (`AWS_ENDPOINT_URL`)
 * and credentials, with bounded timeouts and two attempts, since AppConfig is read on the
 * cold-start path: an unreachable AppConfig costs seconds, not the function's timeout.
 */
export const APPCONFIG_CLIENT_CONFIG = {
  maxAttempts: 2,
  retryMode: 'standard',
  requestHandler: { connectionTimeout: 3_000, requestTimeout: 5_000 },
} as const;

/** Where the deployed config comes from. */
export interface ConfigSourceOptions {
  /** The AppConfig configuration; absent: the packaged file only. */
  appConfig?: AppConfigLocation | undefined;
  /** The config file packaged with the function (the fallback, and the base of relative paths). */
  packagedFile: string;
  /** Seconds a fetched config is reused (default {@link DEFAULT_CONFIG_MAX_AGE_SECONDS}). */
  maxAgeSeconds?: number;
  /** The AppConfig data client (default: one built by Powertools with {@link APPCONFIG_CLIENT_CONFIG}). */
  client?: AppConfigClient;
  logger: Log;
  /** Milliseconds since the epoch (default `Date.now`): when to ask AppConfig again after a failure. */
  now?: () => number;
}

/** The deployed config, as fresh as its max age allows. */
export interface ConfigSource {
  /** The current config. @throws ConfigError when AppConfig holds an invalid config, or no config can be read at all. */
  get(): Promise<FleetConfig>;
}

/** How a config from AppConfig is named in errors and logs. */
export function appConfigName(location: AppConfigLocation): string {
  return `appconfig:${location.application}/${location.environment}/${location.profile}`;
}

/** The deployed config of `options` (see the module comment for the rules). */
export function createConfigSource(options: ConfigSourceOptions): ConfigSource {
  const { appConfig, packagedFile, logger } = options;
  const now = options.now ?? Date.now;
  let packaged: Promise<FleetConfig> | undefined;
  const packagedConfig = () => {
    packaged ??= loadConfig(packagedFile).catch((error: unknown) => {
      packaged = undefined;
      throw error;
    });
    return packaged;
  };
  if (!appConfig) return { get: packagedConfig };

  const maxAge = options.maxAgeSeconds ?? DEFAULT_CONFIG_MAX_AGE_SECONDS;
  const name = appConfigName(appConfig);
  const target = { application: appConfig.application, environment: appConfig.environment };
  // Imported on first use: a function without AppConfig never loads the provider or its client.
  let provider: Promise<AppConfigProvider> | undefined;
  const providerOf = () => {
    provider ??= import('@aws-lambda-powertools/parameters/appconfig').then(({ AppConfigProvider }) =>
      options.client
        ? new AppConfigProvider({ ...target, awsSdkV3Client: options.client })
        : new AppConfigProvider({ ...target, clientConfig: APPCONFIG_CLIENT_CONFIG }),
    );
    return provider;
  };
  const pollInterval = Math.min(Math.max(maxAge, MIN_CONFIG_MAX_AGE_SECONDS), MAX_POLL_INTERVAL_SECONDS);
  /** The last valid config, and the bytes it was parsed from (Powertools answers the same bytes until a new version arrives). */
  let current: { config: FleetConfig; raw?: Uint8Array } | undefined;
  /** After a failed fetch, the config in use is kept until then. */
  let retryAt = 0;
  /** Set while the latest version AppConfig answered is invalid: reads fail until a valid one arrives. */
  let invalid: ConfigError | undefined;
  let pending: Promise<FleetConfig> | undefined;

  async function fetchConfig(): Promise<FleetConfig> {
    if (current && !invalid && now() < retryAt) return current.config;
    let raw: Uint8Array | undefined;
    try {
      raw = (await (
        await providerOf()
      ).get(appConfig!.profile, {
        maxAge,
        sdkOptions: { RequiredMinimumPollIntervalInSeconds: pollInterval },
      })) as Uint8Array | undefined;
      if (raw === undefined || raw.byteLength === 0) {
        throw new ConfigError(
          [{ path: '(appconfig)', message: 'appconfig answered no configuration' }],
          name,
        );
      }
    } catch (error) {
      retryAt = now() + maxAge * 1000;
      if (invalid) throw invalid;
      if (current) {
        logger.warn('AppConfig unreachable, keeping the config fetched before', {
          source: name,
          error: errorInfo(error),
        });
        return current.config;
      }
      logger.warn('AppConfig unreachable, using the packaged config', {
        source: name,
        file: packagedFile,
        error: errorInfo(error),
      });
      const config = await packagedConfig();
      current = { config };
      return config;
    }
    if (current?.raw === raw) return current.config;
    try {
      const config = parseConfigText(new TextDecoder().decode(raw), name, { pathsRelativeTo: packagedFile });
      current = { config, raw };
      retryAt = 0;
      invalid = undefined;
      return config;
    } catch (error) {
      if (error instanceof ConfigError) {
        // Never the config in use: a deployment meant to change it must not run on the old one unseen.
        invalid = error;
        logger.error('AppConfig config is invalid', { source: name, issues: error.issues });
      }
      throw error;
    }
  }

  return {
    get() {
      // Concurrent callers (a batch's records) share one fetch.
      pending ??= fetchConfig().finally(() => {
        pending = undefined;
      });
      return pending;
    },
  };
}

/** The config source the environment describes (see the module comment for the variables). */
export function configSourceFromEnv(
  logger: Log,
  env: NodeJS.ProcessEnv = process.env,
  overrides: Pick<ConfigSourceOptions, 'client' | 'maxAgeSeconds' | 'now'> = {},
): ConfigSource {
  return createConfigSource({
    appConfig: appConfigLocation(env),
    packagedFile: env.FLEETWARD_CONFIG ?? 'fleet.yaml',
    maxAgeSeconds: configMaxAgeSeconds(env),
    logger,
    ...overrides,
  });
}

/** Provider permissions of this module's calls (shared/clouds/permissions.ts), held by the function's own role. */
export const PERMISSIONS: readonly PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'function',
    capability: 'config',
    permission: 'appconfig:StartConfigurationSession',
    calls: ['appconfig:StartConfigurationSession'],
    why: "open an AppConfig session for the deployment's fleet.yaml",
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'config',
    permission: 'appconfig:GetLatestConfiguration',
    calls: ['appconfig:GetLatestConfiguration'],
    why: 'read the deployed fleet.yaml from AppConfig',
  },
];
