/**
 * Acceptance of Slack notifications (issue 6): through the real Notifier, with the local
 * sink answering 429 (Retry-After: 2) to the first call of each webhook and enforcing
 * Slack's 1 message per second, every message still arrives, in order, no faster than
 * 1/s per webhook. Webhook URLs also come from SSM and Secrets Manager (moto).
 */
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import type { Finding } from '../../shared/model.ts';
import { createNotifier } from '../../shared/notify/notifier.ts';
import { clearWebhookCache } from '../../shared/notify/webhooks.ts';
import type { Log } from '../../shared/ports.ts';
import { RequestLog } from '../sandbox/faults.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { type SlackSink, startSlackSink } from '../sandbox/slack-sink.ts';

const REGION = 'us-east-1';

function memoryLog() {
  const lines: string[] = [];
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      lines.push(`${level} ${message} ${JSON.stringify(extra)}`);
  const logger: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

function fleetConfig(slack: Record<string, unknown>): FleetConfig {
  return parseConfig({
    version: 1,
    clouds: {
      aws: {
        accounts: [
          {
            id: '111111111111',
            roleArn: 'arn:aws:iam::111111111111:role/fleetward-reader',
            regions: ['eu-central-1'],
          },
        ],
      },
    },
    jurisdictions: {
      eu: { preset: 'eu-gdpr' },
      in: { preset: 'in-dpdp' },
      za: { preset: 'za-popia' },
      ke: { preset: 'ke-dpa' },
    },
    slack,
  });
}

function finding(clusterId: string, jurisdiction: string, severity: Finding['severity']): Finding {
  return {
    clusterId,
    jurisdiction,
    kind: 'rpo-exceeded',
    severity,
    message: `last good backup of ${clusterId} is too old`,
    at: '2025-01-01T00:00:00.000Z',
  };
}

const headerOf = (body: { blocks?: unknown[] }) =>
  ((body.blocks?.[0] as { text?: { text?: string } } | undefined)?.text?.text ?? '') as string;

describe('slack notifications under rate limiting (acceptance)', () => {
  let sink: SlackSink;
  const log = new RequestLog();

  beforeAll(async () => {
    // Slack's own limit: 1 message per webhook per second, 429 with Retry-After beyond it.
    sink = await startSlackSink({ log, rateLimit: { perWindow: 1, windowMs: 1000 } });
  });
  afterAll(async () => {
    delete process.env.FLEETWARD_ACCEPT_SLACK_OPS;
    delete process.env.FLEETWARD_ACCEPT_SLACK_SEC;
    await sink.stop();
  });

  it('delivers every message, in order, no faster than 1/s per webhook, after a 429 with Retry-After 2', async () => {
    // Prepare: 5 routes to "ops", 3 to "sec"; the first call to each answers 429, Retry-After: 2
    process.env.FLEETWARD_ACCEPT_SLACK_OPS = sink.url('ops');
    process.env.FLEETWARD_ACCEPT_SLACK_SEC = sink.url('sec');
    sink.failNext('ops', { status: 429, retryAfterSeconds: 2 });
    sink.failNext('sec', { status: 429, retryAfterSeconds: 2 });
    const config = fleetConfig({
      webhooks: {
        ops: { from: 'env', name: 'FLEETWARD_ACCEPT_SLACK_OPS' },
        sec: { from: 'env', name: 'FLEETWARD_ACCEPT_SLACK_SEC' },
      },
      routes: [
        { jurisdiction: 'eu', webhook: 'ops' },
        { jurisdiction: 'in', webhook: 'ops' },
        { jurisdiction: 'eu', minSeverity: 'high', webhook: 'sec' },
        { jurisdiction: 'za', webhook: 'ops' },
        { jurisdiction: 'in', minSeverity: 'high', webhook: 'sec' },
        { jurisdiction: 'ke', webhook: 'ops' },
        { minSeverity: 'critical', webhook: 'ops' },
        { minSeverity: 'critical', webhook: 'sec' },
      ],
    });
    const logger = memoryLog();
    const notifier = await createNotifier(config, { logger: logger.logger });

    // Act
    const result = await notifier.notify({
      job: 'reconcile-backups',
      findings: [
        finding('eu-1', 'eu', 'critical'),
        finding('in-1', 'in', 'high'),
        finding('za-1', 'za', 'low'),
        finding('ke-1', 'ke', 'medium'),
      ],
    });
    await notifier.close();

    // Assess: all arrived, in route order per webhook
    expect(result).toMatchObject({ sent: 8, failed: 0 });
    const ops = sink.messages('ops');
    const sec = sink.messages('sec');
    expect(ops.map((m) => headerOf(m.body))).toEqual([
      'Fleetward reconcile-backups · eu',
      'Fleetward reconcile-backups · in',
      'Fleetward reconcile-backups · za',
      'Fleetward reconcile-backups · ke',
      'Fleetward reconcile-backups',
    ]);
    expect(sec.map((m) => headerOf(m.body))).toEqual([
      'Fleetward reconcile-backups · eu',
      'Fleetward reconcile-backups · in',
      'Fleetward reconcile-backups',
    ]);
    expect(JSON.stringify(ops[4]?.body)).toContain('`eu-1`');
    expect(JSON.stringify(ops[4]?.body)).not.toContain('`in-1`');

    // No faster than 1/s per webhook: gaps between accepted messages, and no 429 but the scripted one.
    for (const messages of [ops, sec]) {
      for (let i = 1; i < messages.length; i++) {
        expect(messages[i]!.at - messages[i - 1]!.at).toBeGreaterThanOrEqual(990);
      }
    }
    for (const name of ['ops', 'sec']) {
      const requests = log.entries.filter((e) => e.scope === name);
      expect(requests.filter((e) => e.status === 429)).toHaveLength(1);
      expect(requests[0]?.status).toBe(429);
      // The retry after the 429 waited the Retry-After of 2 seconds.
      expect(requests[1]!.at! - requests[0]!.at!).toBeGreaterThanOrEqual(1990);
      expect(requests.filter((e) => e.status === 200)).toHaveLength(name === 'ops' ? 5 : 3);
    }
    // Logs name webhooks by their short id, never by URL.
    expect(logger.lines.join('\n')).not.toContain('/services/');
  });
});

describe('slack webhooks from ssm and secrets manager (moto)', () => {
  let moto: MotoServer;
  let sink: SlackSink;
  const saved = process.env.AWS_ENDPOINT_URL;

  beforeAll(async () => {
    [moto, sink] = await Promise.all([startMoto(), startSlackSink({ rateLimit: false })]);
    const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
    const ssm = new SSMClient({ endpoint: moto.url, region: REGION, credentials });
    const secrets = new SecretsManagerClient({ endpoint: moto.url, region: REGION, credentials });
    await ssm.send(
      new PutParameterCommand({
        Name: '/fleetward/slack/ops',
        Type: 'SecureString',
        Value: sink.url('from-ssm'),
      }),
    );
    await secrets.send(
      new CreateSecretCommand({
        Name: 'fleetward/slack/sec',
        SecretString: JSON.stringify({ url: sink.url('from-secret') }),
      }),
    );
    ssm.destroy();
    secrets.destroy();
    // The product's clients use the SDK defaults: AWS_ENDPOINT_URL points them at moto.
    process.env.AWS_ENDPOINT_URL = moto.url;
    clearWebhookCache();
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = saved;
    await Promise.all([moto?.stop(), sink?.stop()]);
  });

  it('resolves webhook urls from a SecureString parameter and a JSON secret, and names a missing one', async () => {
    // Prepare
    const config = fleetConfig({
      webhooks: {
        'via-ssm': { from: 'ssm', name: '/fleetward/slack/ops' },
        'via-secret': { from: 'secretsmanager', name: 'fleetward/slack/sec' },
        missing: { from: 'ssm', name: '/fleetward/slack/missing' },
      },
      routes: [{ webhook: 'via-ssm' }, { webhook: 'via-secret' }, { webhook: 'missing' }],
    });
    const logger = memoryLog();
    const notifier = await createNotifier(config, { logger: logger.logger });

    // Act
    const result = await notifier.notify({ job: 'audit', findings: [finding('eu-1', 'eu', 'high')] });
    await notifier.close();

    // Assess
    expect(result.routes?.map((r) => r.status)).toEqual(['sent', 'sent', 'failed']);
    expect(sink.messages('from-ssm')).toHaveLength(1);
    expect(sink.messages('from-secret')).toHaveLength(1);
    expect(JSON.stringify(sink.messages('from-secret')[0]?.body)).toContain('`eu-1`');
    expect(result.routes?.[2]?.error?.message).toBe(
      'cannot read slack webhook "missing" from ssm (ParameterNotFound)',
    );
    expect(logger.lines.join('\n')).not.toContain('/services/');
  });
});
