/**
 * The AppConfig data-plane fake against the AppConfig Data API reference, read through the real
 * `@aws-sdk/client-appconfigdata` (whose deserializers follow the service model: headers
 * `Next-Poll-Configuration-Token`, `Next-Poll-Interval-In-Seconds`, `Content-Type`,
 * `Version-Label`, the configuration as the payload). Sources: test/fixtures/aws/README.md.
 */
import {
  AppConfigDataClient,
  BadRequestException,
  GetLatestConfigurationCommand,
  ResourceNotFoundException,
  StartConfigurationSessionCommand,
} from '@aws-sdk/client-appconfigdata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppConfigFake, createAppConfigFake } from '../sandbox/appconfig-fake.ts';
import { type AwsProxy, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { freePort } from '../sandbox/net.ts';

const TARGET = { application: 'fleetward', environment: 'prod', profile: 'fleet' };
let proxy: AwsProxy;
let fake: AppConfigFake;
let client: AppConfigDataClient;

const session = async (interval?: number) =>
  (
    await client.send(
      new StartConfigurationSessionCommand({
        ApplicationIdentifier: TARGET.application,
        EnvironmentIdentifier: TARGET.environment,
        ConfigurationProfileIdentifier: TARGET.profile,
        ...(interval ? { RequiredMinimumPollIntervalInSeconds: interval } : {}),
      }),
    )
  ).InitialConfigurationToken!;

beforeAll(async () => {
  proxy = await startAwsProxy({ upstream: `http://127.0.0.1:${await freePort()}` });
  fake = createAppConfigFake();
  fake.attach(proxy);
  client = new AppConfigDataClient({
    endpoint: proxy.url,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });
  fake.publish(TARGET, '{"version":1}');
});

afterAll(async () => {
  client?.destroy();
  await proxy?.stop();
});

describe('appconfig data fake', () => {
  it('answers a session, the configuration with its headers, then an empty body until a new version', async () => {
    // Act
    const token = await session(30);
    const first = await client.send(new GetLatestConfigurationCommand({ ConfigurationToken: token }));
    const second = await client.send(
      new GetLatestConfigurationCommand({ ConfigurationToken: first.NextPollConfigurationToken! }),
    );
    fake.publish(TARGET, '{"version":1,"stage":"two"}');
    const third = await client.send(
      new GetLatestConfigurationCommand({ ConfigurationToken: second.NextPollConfigurationToken! }),
    );

    // Assess
    expect(typeof token).toBe('string');
    expect(new TextDecoder().decode(first.Configuration)).toBe('{"version":1}');
    expect(first).toMatchObject({
      ContentType: 'application/json',
      NextPollIntervalInSeconds: 30,
      VersionLabel: '1',
    });
    expect(first.NextPollConfigurationToken).not.toBe(token);
    expect(second.Configuration?.byteLength ?? 0).toBe(0);
    expect(second.VersionLabel).toBeUndefined();
    expect(new TextDecoder().decode(third.Configuration)).toBe('{"version":1,"stage":"two"}');
    expect(third.VersionLabel).toBe('2');
    expect(proxy.requests().map((r) => r.operation)).toEqual([
      'StartConfigurationSession',
      'GetLatestConfiguration',
      'GetLatestConfiguration',
      'GetLatestConfiguration',
    ]);
  });

  it('answers the default poll interval of 60 s when the session sets none', async () => {
    const out = await client.send(new GetLatestConfigurationCommand({ ConfigurationToken: await session() }));

    expect(out.NextPollIntervalInSeconds).toBe(60);
  });

  it('refuses a token used twice, and an unknown configuration, as the API does', async () => {
    const token = await session();
    await client.send(new GetLatestConfigurationCommand({ ConfigurationToken: token }));

    await expect(
      client.send(new GetLatestConfigurationCommand({ ConfigurationToken: token })),
    ).rejects.toBeInstanceOf(BadRequestException);
    await expect(
      client.send(
        new StartConfigurationSessionCommand({
          ApplicationIdentifier: 'nobody',
          EnvironmentIdentifier: 'prod',
          ConfigurationProfileIdentifier: 'fleet',
        }),
      ),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await expect(session(5)).rejects.toBeInstanceOf(BadRequestException);
  });
});
