import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  normalisePushMessage,
  type PushAuthOptions,
  parsePushBody,
  verifyPushToken,
} from '../../shared/events/gcp.ts';
import { EventAuthError, MalformedEventError, UnsupportedEventError } from '../../shared/events/model.ts';
import { googlePushClaims, type JwksServer, startJwksServer } from '../sandbox/oidc.ts';

const AUDIENCE = 'https://events.fleetward.example/gcp';
const PUSHER = 'pubsub-push@example-project.iam.gserviceaccount.com';

const read = (name: string) => JSON.parse(readFileSync(`test/fixtures/events/gcp/${name}`, 'utf8'));

/** A push envelope carrying a log sink's LogEntry, as Pub/Sub delivers it. */
function pushOf(entry: unknown, messageId = '9100000000000001') {
  return {
    message: {
      data: Buffer.from(JSON.stringify(entry)).toString('base64'),
      attributes: { 'logging.googleapis.com/timestamp': '2025-01-15T09:42:10.123456Z' },
      messageId,
      publishTime: '2025-01-15T09:42:12.000Z',
    },
    subscription: 'projects/example-project/subscriptions/fleetward-gke-audit',
  };
}

describe('verifyPushToken', () => {
  let jwks: JwksServer;
  let options: PushAuthOptions;
  beforeAll(async () => {
    jwks = await startJwksServer();
    options = { audience: AUDIENCE, serviceAccountEmail: PUSHER, jwksUrl: jwks.url, issuers: undefined };
  });
  afterAll(() => jwks.close());

  it('accepts a token Google would send for the push subscription', async () => {
    // Prepare
    const token = await jwks.sign(googlePushClaims(AUDIENCE, PUSHER));

    // Act
    const claims = await verifyPushToken(`Bearer ${token}`, options);

    // Assess
    expect(claims.email).toBe(PUSHER);
  });

  it('fetches the JWKS once per URL across requests', async () => {
    const before = jwks.fetches();
    for (let i = 0; i < 3; i++) {
      await verifyPushToken(`Bearer ${await jwks.sign(googlePushClaims(AUDIENCE, PUSHER))}`, options);
    }

    expect(jwks.fetches() - before).toBe(0);
  });

  const now = () => Math.floor(Date.now() / 1000);
  it.each<[string, (s: JwksServer) => Promise<string | undefined>, string]>([
    ['no header', async () => undefined, 'no authorization'],
    ['a basic header', async () => 'Basic dXNlcjpwYXNz', 'not a bearer'],
    [
      'a forged signature',
      async (s) => `Bearer ${await s.forge(googlePushClaims(AUDIENCE, PUSHER))}`,
      'signature',
    ],
    [
      'an unknown key id',
      async (s) => `Bearer ${await s.sign(googlePushClaims(AUDIENCE, PUSHER), { kid: 'other' })}`,
      'JWKS',
    ],
    [
      'a wrong audience',
      async (s) => `Bearer ${await s.sign(googlePushClaims('https://else.example', PUSHER))}`,
      'aud',
    ],
    [
      'a wrong issuer',
      async (s) =>
        `Bearer ${await s.sign({ ...googlePushClaims(AUDIENCE, PUSHER), iss: 'https://evil.example' })}`,
      'iss',
    ],
    [
      'an expired token',
      async (s) =>
        `Bearer ${await s.sign(googlePushClaims(AUDIENCE, PUSHER), { issuedAt: now() - 7200, ttlSec: 3600 })}`,
      'exp',
    ],
    [
      'a token issued more than an hour ago that has not expired yet',
      async (s) =>
        `Bearer ${await s.sign(googlePushClaims(AUDIENCE, PUSHER), { issuedAt: now() - 7200, ttlSec: 3 * 3600 })}`,
      'iat',
    ],
    [
      'another service account',
      async (s) =>
        `Bearer ${await s.sign(googlePushClaims(AUDIENCE, 'intruder@other.iam.gserviceaccount.com'))}`,
      'email',
    ],
    [
      'an unverified email',
      async (s) => `Bearer ${await s.sign({ ...googlePushClaims(AUDIENCE, PUSHER), email_verified: false })}`,
      'verified',
    ],
  ])('refuses %s', async (_what, header, reason) => {
    const authorization = await header(jwks);

    const error = await verifyPushToken(authorization, options).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EventAuthError);
    expect((error as EventAuthError).message).toBe('event sender not authenticated');
    expect((error as EventAuthError).reason).toContain(reason);
  });
});

describe('parsePushBody', () => {
  it('accepts the snake_case twins Pub/Sub also sends', () => {
    const body = read('notification-upgrade.json');
    delete body.message.messageId;
    delete body.message.publishTime;

    const envelope = parsePushBody(JSON.stringify(body));

    expect(envelope.message.messageId).toBe('9800598855834432');
  });

  it('unwraps a CloudEvents structured-mode push (the Pub/Sub conformance sample)', () => {
    // Act
    const envelope = parsePushBody(read('cloudevent-pubsub-text.json'));

    // Assess
    expect(envelope.subscription).toBe('projects/sample-project/subscriptions/sample-subscription');
    expect(envelope.message.messageId).toBe('aaaaaa-1111-bbbb-2222-cccccccccccc');
    expect(envelope.message.attributes).toEqual({ attr1: 'attr1-value' });
    expect(Buffer.from(envelope.message.data!, 'base64').toString()).toBe('test message 3');
  });

  it('reads a GKE notification pushed as a structured CloudEvent like the wrapped push', () => {
    // Prepare
    const wrapped = normalisePushMessage(parsePushBody(read('notification-upgrade-available.json')));

    // Act
    const event = normalisePushMessage(parsePushBody(read('cloudevent-notification-upgrade-available.json')));

    // Assess
    expect(event).toEqual(wrapped);
  });

  it('takes the id and time of the CloudEvent when the message leaves them out', () => {
    // Prepare
    const body = read('cloudevent-pubsub-text.json');
    delete body.data.message.messageId;
    delete body.data.message.publishTime;

    // Act
    const envelope = parsePushBody(body);

    // Assess
    expect(envelope.message.messageId).toBe(body.id);
    expect(envelope.message.publishTime).toBe(body.time);
  });

  it.each<[string, unknown, string]>([
    ['text that is not JSON', 'not json', 'body'],
    ['no message', { subscription: 'projects/p/subscriptions/s' }, 'message'],
    [
      'data that is not base64',
      {
        ...read('notification-upgrade.json'),
        message: { ...read('notification-upgrade.json').message, data: '%%%' },
      },
      'message.data',
    ],
    ['no publish time', { message: { data: '', messageId: '1' }, subscription: 's' }, 'message.publishTime'],
    [
      'a CloudEvent of another type',
      { ...read('cloudevent-pubsub-text.json'), type: 'google.cloud.storage.object.v1.finalized' },
      'type',
    ],
    ['a CloudEvent without data', { ...read('cloudevent-pubsub-text.json'), data: undefined }, 'data'],
  ])('rejects %s, naming the field', (_what, body, field) => {
    const error = (() => {
      try {
        parsePushBody(body);
      } catch (e) {
        return e;
      }
    })();

    expect(error).toBeInstanceOf(MalformedEventError);
    expect((error as MalformedEventError).reason.startsWith(`${field}:`)).toBe(true);
  });
});

describe('normalisePushMessage', () => {
  it.each([
    [
      'notification-upgrade-available.json',
      'version-available',
      { scope: '123456789', region: 'us-central1-c', name: 'example-cluster' },
      { version: '1.17.15-gke.800', resourceType: 'MASTER', releaseChannel: 'RAPID' },
    ],
    [
      'notification-upgrade.json',
      'updated',
      { scope: '0123456789', region: 'us-central1', name: 'test-cluster' },
      { currentVersion: '1.22.4-gke.1501', targetVersion: '1.22.6-gke.300', resourceType: 'MASTER' },
    ],
    [
      'notification-end-of-support.json',
      'support-ending',
      { scope: '0123456789', region: 'europe-west3', name: 'test-cluster' },
      expect.objectContaining({
        eventType: 'END_OF_SUPPORT',
        standardSupportEndTime: '2024-11-04T00:00:00Z',
      }),
    ],
  ])('normalises the cluster notification %s to %s', (file, type, ref, detail) => {
    // Prepare
    const envelope = parsePushBody(read(file));

    // Act
    const event = normalisePushMessage(envelope);

    // Assess
    expect(event).toMatchObject({
      id: envelope.message.messageId,
      source: 'gcp',
      type,
      occurredAt: envelope.message.publishTime,
    });
    expect(event.cluster).toEqual({ cloud: 'gcp', ...ref });
    expect(event.detail).toEqual(detail);
  });

  it('calls support ended once the last support date has passed', () => {
    const body = read('notification-end-of-support.json');
    body.message.publishTime = '2025-07-01T00:00:00Z';

    expect(normalisePushMessage(parsePushBody(body)).type).toBe('support-ended');
  });

  it.each([
    ['audit-create-cluster.json', 'created', 'google.container.v1.ClusterManager.CreateCluster'],
    ['audit-delete-cluster.json', 'deleted', 'google.container.v1.ClusterManager.DeleteCluster'],
    ['audit-update-cluster.json', 'updated', 'google.container.v1.ClusterManager.UpdateCluster'],
    ['audit-set-labels.json', 'updated', 'google.container.v1.ClusterManager.SetLabels'],
  ])('normalises the audit log entry %s to %s', (file, type, providerType) => {
    const entry = read(file);

    const event = normalisePushMessage(parsePushBody(pushOf(entry, 'm-1')));

    expect(event).toMatchObject({ id: 'm-1', type, providerType, occurredAt: entry.timestamp });
    expect(event.cluster).toEqual({
      cloud: 'gcp',
      scope: 'example-project',
      region: 'europe-west3',
      name: 'example-cluster',
    });
  });

  it('reads the new version of an UpdateCluster', () => {
    const event = normalisePushMessage(parsePushBody(pushOf(read('audit-update-cluster.json'))));

    expect(event.detail).toMatchObject({ version: '1.31.1-gke.1146000' });
  });

  it('takes the cluster from resourceName when the resource labels are missing', () => {
    const entry = read('audit-delete-cluster.json');
    delete entry.resource;

    const event = normalisePushMessage(parsePushBody(pushOf(entry)));

    expect(event.cluster).toEqual({
      cloud: 'gcp',
      scope: 'example-project',
      region: 'europe-west3',
      name: 'example-cluster',
    });
  });

  it.each<[string, () => unknown]>([
    [
      'an unknown notification type',
      () => {
        const b = read('notification-upgrade.json');
        b.message.attributes.type_url = 'type.googleapis.com/google.container.v1beta1.SomethingNewEvent';
        return b;
      },
    ],
    [
      'the first entry of a running operation',
      () => pushOf({ ...read('audit-create-cluster.json'), operation: { id: 'op', first: true } }),
    ],
    [
      'a failed call',
      () =>
        pushOf({
          ...read('audit-create-cluster.json'),
          protoPayload: {
            ...read('audit-create-cluster.json').protoPayload,
            status: { code: 7, message: 'denied' },
          },
        }),
    ],
    [
      'a node pool call',
      () =>
        pushOf({
          ...read('audit-create-cluster.json'),
          protoPayload: {
            ...read('audit-create-cluster.json').protoPayload,
            methodName: 'google.container.v1.ClusterManager.CreateNodePool',
          },
        }),
    ],
    [
      'another service',
      () =>
        pushOf({
          ...read('audit-create-cluster.json'),
          protoPayload: {
            ...read('audit-create-cluster.json').protoPayload,
            serviceName: 'compute.googleapis.com',
          },
        }),
    ],
    [
      'plain text',
      () => ({
        ...pushOf({}),
        message: { ...pushOf({}).message, data: Buffer.from('hello').toString('base64') },
      }),
    ],
  ])('ignores %s as unsupported', (_what, body) => {
    expect(() => normalisePushMessage(parsePushBody(body()))).toThrow(UnsupportedEventError);
  });

  it.each<[string, () => unknown, string]>([
    [
      'a notification without cluster_name',
      () => {
        const b = read('notification-upgrade.json');
        delete b.message.attributes.cluster_name;
        return b;
      },
      'message.attributes.cluster_name',
    ],
    [
      'a notification whose payload is not JSON',
      () => {
        const b = read('notification-upgrade.json');
        b.message.attributes.payload = '{oops';
        return b;
      },
      'message.attributes.payload',
    ],
    [
      'an audit entry without a method',
      () => pushOf({ protoPayload: { serviceName: 'container.googleapis.com' } }),
      'message.data.protoPayload.methodName',
    ],
    [
      'an audit entry that names no cluster',
      () =>
        pushOf({
          ...read('audit-set-labels.json'),
          resource: { type: 'gke_cluster', labels: {} },
          protoPayload: { ...read('audit-set-labels.json').protoPayload, resourceName: 'projects/p' },
        }),
      'message.data.resource.labels.cluster_name',
    ],
    [
      'a message without data or type',
      () => ({ message: { messageId: '1', publishTime: '2025-01-01T00:00:00Z' }, subscription: 's' }),
      'message.data',
    ],
  ])('rejects %s, naming the field', (_what, body, field) => {
    const error = (() => {
      try {
        normalisePushMessage(parsePushBody(body()));
      } catch (e) {
        return e;
      }
    })();

    expect(error).toBeInstanceOf(MalformedEventError);
    expect((error as MalformedEventError).reason.startsWith(`${field}:`)).toBe(true);
  });
});
