/**
 * The deployed config read from AWS AppConfig through Powertools Parameters, against the
 * AppConfig data-plane fake served by the AWS proxy: the handler path (`deployedConfig()` with
 * the deployment's environment), a new version seen after the cache age, the packaged file when
 * AppConfig is not configured or unreachable, and an invalid deployed config refused by field.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppConfigDataClient } from '@aws-sdk/client-appconfigdata';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type AppConfigLocation,
  appConfigLocation,
  configMaxAgeSeconds,
  createConfigSource,
} from '../../shared/config/appconfig.ts';
import type { Log } from '../../shared/ports.ts';
import { ConfigError } from '../../shared/runtime/errors.ts';
import { type AppConfigFake, createAppConfigFake } from '../sandbox/appconfig-fake.ts';
import { type AwsProxy, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { freePort } from '../sandbox/net.ts';

/** A valid fleet config whose `stage` tells the versions apart. */
const fleet = (stage: string) => ({
  version: 1,
  stage,
  clouds: {
    aws: {
      accounts: [
        {
          id: '111122223333',
          roleArn: 'arn:aws:iam::111122223333:role/fleetward-reader',
          regions: ['eu-central-1'],
        },
      ],
    },
  },
  jurisdictions: { eu: { preset: 'eu-gdpr' } },
});

/** A logger that keeps what it was told. */
function recordingLog() {
  const records: { level: string; message: string; data: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      records.push({ level, message, data: Object.assign({}, ...extra) });
  const log: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { log, records };
}

let proxy: AwsProxy;
let fake: AppConfigFake;
let dir: string;
let packagedFile: string;
let target = 0;

/** A fresh application per test, so versions and sessions never leak between tests. */
function location(): AppConfigLocation {
  target++;
  return { application: `fleetward-${target}`, environment: 'prod', profile: 'fleet' };
}

function client(endpoint = proxy.url): AppConfigDataClient {
  return new AppConfigDataClient({
    endpoint,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });
}

beforeAll(async () => {
  // Nothing is forwarded: AppConfig Data is answered by the fake, in the proxy.
  proxy = await startAwsProxy({ upstream: `http://127.0.0.1:${await freePort()}` });
  fake = createAppConfigFake();
  fake.attach(proxy);
  dir = mkdtempSync(join(tmpdir(), 'fleetward-appconfig-'));
  packagedFile = join(dir, 'fleet.yaml');
  writeFileSync(packagedFile, JSON.stringify(fleet('packaged')));
});

afterAll(async () => {
  await proxy?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

describe('deployed config from appconfig', () => {
  it('reads the config a handler sees from AppConfig, with the deployment environment', async () => {
    // Prepare
    const where = location();
    fake.publish(where, JSON.stringify(fleet('from-appconfig')));
    vi.stubEnv('FLEETWARD_APPCONFIG_APPLICATION', where.application);
    vi.stubEnv('FLEETWARD_APPCONFIG_ENVIRONMENT', where.environment);
    vi.stubEnv('FLEETWARD_APPCONFIG_PROFILE', where.profile);
    vi.stubEnv('FLEETWARD_CONFIG', packagedFile);
    vi.stubEnv('AWS_ENDPOINT_URL', proxy.url);
    vi.stubEnv('AWS_REGION', 'eu-central-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'testing');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'testing');
    proxy.log.clear();
    const { deployedConfig } = await import('../../shared/runtime/lambda.ts');

    // Act
    const first = await deployedConfig();
    const second = await deployedConfig();

    // Assess
    expect(first.stage).toBe('from-appconfig');
    expect(second).toBe(first);
    const operations = proxy.requests().map((r) => [r.operation, r.service, r.region]);
    // One session, one fetch: the second read is served from the cache.
    expect(operations).toEqual([
      ['StartConfigurationSession', 'appconfig', 'eu-central-1'],
      ['GetLatestConfiguration', 'appconfig', 'eu-central-1'],
    ]);
  });

  it('sees a newly deployed version once the cache age has passed, and not before', async () => {
    // Prepare
    const where = location();
    fake.publish(where, JSON.stringify(fleet('v1')));
    const source = createConfigSource({
      appConfig: where,
      packagedFile,
      maxAgeSeconds: 1,
      client: client(),
      logger: recordingLog().log,
    });
    const v1 = await source.get();

    // Act
    fake.publish(where, JSON.stringify(fleet('v2')));
    const cached = await source.get();
    await new Promise((r) => setTimeout(r, 2_100));
    const fresh = await source.get();
    await new Promise((r) => setTimeout(r, 2_100));
    const unchanged = await source.get();

    // Assess
    expect(v1.stage).toBe('v1');
    expect(cached).toBe(v1);
    expect(fresh.stage).toBe('v2');
    // AppConfig answered an empty body (nothing new): the same config object, not a reparse.
    expect(unchanged).toBe(fresh);
  });

  it('accepts YAML content as well as JSON', async () => {
    const where = location();
    fake.publish(
      where,
      'version: 1\nstage: yaml\nclouds:\n  kubeconfig: [{ alias: lab, file: kubeconfig, contexts: [{ name: a, region: lab-1, country: DE }] }]\njurisdictions: { eu: { preset: eu-gdpr } }\n',
      'application/x-yaml',
    );
    const source = createConfigSource({
      appConfig: where,
      packagedFile,
      client: client(),
      logger: recordingLog().log,
    });

    const config = await source.get();

    expect(config.stage).toBe('yaml');
    // Relative paths are relative to the packaged file's directory.
    expect(config.clouds.kubeconfig?.[0]?.file).toBe(join(dir, 'kubeconfig'));
  });

  it('uses the packaged file when AppConfig is not configured, without calling it', async () => {
    proxy.log.clear();
    const source = createConfigSource({ packagedFile, client: client(), logger: recordingLog().log });

    const config = await source.get();

    expect(config.stage).toBe('packaged');
    expect(proxy.requests()).toEqual([]);
  });

  it('fails with the path of every bad field when AppConfig holds an invalid config, and never falls back', async () => {
    // Prepare
    const where = location();
    fake.publish(where, JSON.stringify(fleet('good')));
    const { log, records } = recordingLog();
    const source = createConfigSource({
      appConfig: where,
      packagedFile,
      maxAgeSeconds: 1,
      client: client(),
      logger: log,
    });
    await source.get();
    const bad = {
      ...fleet('bad'),
      jurisdictions: { eu: { preset: 'eu-gdpr', audit: { retentionDays: -1 } } },
    };
    fake.publish(where, JSON.stringify({ ...bad, surprise: true }));
    await new Promise((r) => setTimeout(r, 2_100));

    // Act
    const error = await source.get().catch((e: unknown) => e);
    const again = await source.get().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).file).toBe(`appconfig:${where.application}/prod/fleet`);
    expect((error as ConfigError).issues.map((i) => i.path).sort()).toEqual([
      'jurisdictions.eu.audit.retentionDays',
      'surprise',
    ]);
    expect(again).toBeInstanceOf(ConfigError);

    // Act: AppConfig then becomes unreachable; the valid config fetched before is still not used.
    proxy.faults.add({ operation: 'GetLatestConfiguration', fault: { kind: 'error', status: 503 } });
    await new Promise((r) => setTimeout(r, 2_100));
    proxy.log.clear();
    const unreachable = await source.get().catch((e: unknown) => e);
    proxy.faults.clear();

    // Assess
    expect(proxy.requests().map((r) => [r.operation, r.fault])).toEqual([
      ['GetLatestConfiguration', 'error'],
    ]);
    expect(unreachable).toBeInstanceOf(ConfigError);
    expect((unreachable as ConfigError).issues).toEqual((error as ConfigError).issues);
    expect(records.find((r) => r.level === 'error')).toMatchObject({
      message: 'AppConfig config is invalid',
      data: { issues: expect.arrayContaining([expect.objectContaining({ path: 'surprise' })]) },
    });
  });

  it('rejects an invalid first config rather than using the packaged file', async () => {
    const where = location();
    fake.publish(where, '{"version": 1, "stage": "x", "clouds": {}, "jurisdictions": {}');
    const source = createConfigSource({
      appConfig: where,
      packagedFile,
      client: client(),
      logger: recordingLog().log,
    });

    const error = await source.get().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]?.path).toMatch(/^appconfig:.+:\d+:\d+$/);
  });

  it('falls back to the packaged file, with a warning, when AppConfig is unreachable on the first fetch', async () => {
    // Prepare: nothing listens on this port.
    const closed = `http://127.0.0.1:${await freePort()}`;
    const { log, records } = recordingLog();
    const source = createConfigSource({
      appConfig: location(),
      packagedFile,
      client: client(closed),
      logger: log,
    });

    // Act
    const config = await source.get();

    // Assess
    expect(config.stage).toBe('packaged');
    expect(records.filter((r) => r.level === 'warn')).toEqual([
      expect.objectContaining({
        message: 'AppConfig unreachable, using the packaged config',
        data: expect.objectContaining({ file: packagedFile }),
      }),
    ]);
  });

  it('keeps the config fetched before, with a warning, when AppConfig becomes unreachable; asks again after the max age', async () => {
    // Prepare
    const where = location();
    fake.publish(where, JSON.stringify(fleet('before')));
    let clock = 0;
    const { log, records } = recordingLog();
    const source = createConfigSource({
      appConfig: where,
      packagedFile,
      maxAgeSeconds: 1,
      client: client(),
      logger: log,
      now: () => clock,
    });
    const before = await source.get();
    proxy.faults.add({ operation: 'GetLatestConfiguration', fault: { kind: 'error', status: 503 } });
    await new Promise((r) => setTimeout(r, 2_100));

    // Act
    proxy.log.clear();
    const during = await source.get();
    const withinRetry = await source.get();
    const asked = proxy.requests().length;

    // Assess
    expect(before.stage).toBe('before');
    expect(during).toBe(before);
    expect(withinRetry).toBe(before);
    expect(asked).toBe(1);
    expect(records.filter((r) => r.level === 'warn').map((r) => r.message)).toEqual([
      'AppConfig unreachable, keeping the config fetched before',
    ]);

    // Act: AppConfig answers again, and the retry time has passed.
    proxy.faults.clear();
    fake.publish(where, JSON.stringify(fleet('after')));
    clock += 1_001;
    const after = await source.get();

    // Assess
    expect(after.stage).toBe('after');
  });

  it('refuses a partial AppConfig environment and a max age AppConfig would refuse', () => {
    expect(() => appConfigLocation({ FLEETWARD_APPCONFIG_APPLICATION: 'a' })).toThrow(ConfigError);
    const partial = (() => {
      try {
        appConfigLocation({ FLEETWARD_APPCONFIG_APPLICATION: 'a', FLEETWARD_APPCONFIG_PROFILE: 'p' });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(partial?.issues).toEqual([
      {
        path: 'env.FLEETWARD_APPCONFIG_ENVIRONMENT',
        message: 'required when FLEETWARD_APPCONFIG_APPLICATION and FLEETWARD_APPCONFIG_PROFILE are set',
      },
    ]);
    expect(appConfigLocation({})).toBeUndefined();
    expect(configMaxAgeSeconds({})).toBe(60);
    expect(configMaxAgeSeconds({ FLEETWARD_CONFIG_MAX_AGE: '300' })).toBe(300);
    for (const bad of ['5', '1.5', 'soon', '100000']) {
      expect(() => configMaxAgeSeconds({ FLEETWARD_CONFIG_MAX_AGE: bad })).toThrow(ConfigError);
    }
    const error = (() => {
      try {
        configMaxAgeSeconds({ FLEETWARD_CONFIG_MAX_AGE: '5' });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(error?.issues[0]?.path).toBe('env.FLEETWARD_CONFIG_MAX_AGE');
  });
});
