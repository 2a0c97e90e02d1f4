/**
 * Google's Pub/Sub emulator pushes what Google documents for push subscriptions
 * (https://cloud.google.com/pubsub/docs/push, "How push endpoints receive messages"), redelivers
 * what an endpoint does not acknowledge, and ends with its process. The emulator ignores
 * `pushConfig.oidcToken`, so the push auth relay adds the token that Google documents
 * (https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions, "JWT format").
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../sandbox/net.ts';
import {
  type PubSubEmulator,
  PubSubEmulatorError,
  PubSubEmulatorNotFoundError,
  type PushAuthRelay,
  type PushTokenClaims,
  pubsubEmulatorJar,
  pubsubEmulatorMissing,
  startPubSubEmulator,
  startPushAuthRelay,
} from '../sandbox/pubsub-emulator.ts';

/** Google's documented sample of a wrapped push request body (values are Google's placeholders). */
const DOCUMENTED_PUSH_BODY = {
  message: {
    attributes: { key: 'value' },
    data: 'SGVsbG8gQ2xvdWQgUHViL1N1YiEgSGVyZSBpcyBteSBtZXNzYWdlIQ==',
    messageId: '2070443601311540',
    message_id: '2070443601311540',
    publishTime: '2021-02-26T19:13:55.749Z',
    publish_time: '2021-02-26T19:13:55.749Z',
  },
  subscription: 'projects/myproject/subscriptions/mysubscription',
};

/** Google's documented claim names of a push token. */
const DOCUMENTED_CLAIMS = ['aud', 'azp', 'email', 'email_verified', 'exp', 'iat', 'iss', 'sub'];

const SERVICE_ACCOUNT = 'push-invoker@fleetward-test.iam.gserviceaccount.com';
const AUDIENCE = 'https://events.fleetward.test/pubsub';

interface PushBody {
  message: {
    attributes?: Record<string, string>;
    data?: string;
    messageId: string;
    message_id: string;
    publishTime: string;
    publish_time: string;
  };
  subscription: string;
}

interface Received {
  path: string;
  at: number;
  headers: IncomingHttpHeaders;
  body: PushBody;
}

/**
 * The push endpoint. `/ack/<status>` answers `status`; `/nack/<status>/<n>` answers `status`
 * to the first `n` deliveries of each message, then 204.
 */
interface Receiver {
  url(path: string): string;
  received(path: string): Received[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const all: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PushBody;
      all.push({ path, at: Date.now(), headers: req.headers, body });
      const [, mode, status, failures] = path.split('/');
      const earlier = all.filter(
        (r) => r.path === path && r.body.message.messageId === body.message.messageId,
      );
      const answer = mode === 'nack' && earlier.length > Number(failures) ? 204 : Number(status);
      res.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received: (path) => all.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let emulator: PubSubEmulator;
let receiver: Receiver;
let keys: Awaited<ReturnType<typeof generateKeyPair>>;
const relays: PushAuthRelay[] = [];

/** Stand-in for the shared JWKS helper: signs RS256 with a key of this test. */
const sign = (claims: PushTokenClaims) =>
  new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'JWT' })
    .sign(keys.privateKey);

async function relayTo(path: string, audience = AUDIENCE): Promise<PushAuthRelay> {
  const relay = await startPushAuthRelay({
    target: receiver.url(path),
    sign,
    audience,
    serviceAccountEmail: SERVICE_ACCOUNT,
  });
  relays.push(relay);
  return relay;
}

/** Why the emulator cannot run here (no gcloud, no emulator component, no java), if it cannot. */
const missing = pubsubEmulatorMissing();

/** Skips the describe's tests, visibly and with the reason, where the emulator cannot run. */
function needsEmulator(): void {
  beforeEach((ctx) => {
    if (missing) ctx.skip(`needs the Pub/Sub emulator: ${missing}`);
  });
}

beforeAll(async () => {
  keys = await generateKeyPair('RS256');
  receiver = await startReceiver();
  if (!missing) emulator = await startPubSubEmulator();
}, 60_000);

afterAll(async () => {
  await Promise.all(relays.map((r) => r.close()));
  await receiver?.close();
  await emulator?.stop();
}, 60_000);

describe('pubsub emulator push delivery', () => {
  const published = [
    { data: 'cluster eks-eu-1 backed up', attributes: { cloud: 'aws', kind: 'backup' } },
    { data: Buffer.from([0, 1, 2, 250, 255]), attributes: { cloud: 'gcp', kind: 'binary' } },
    { data: '{"cluster":"aks-za-1","phase":"Completed"}', attributes: { cloud: 'azure', kind: 'json' } },
  ];
  let relay: PushAuthRelay;
  let messageIds: string[];
  needsEmulator();

  beforeAll(async () => {
    if (missing) return;
    relay = await relayTo('/ack/204');
    await emulator.createTopic('fleet-events');
    await emulator.createPushSubscription('fleet-events-push', 'fleet-events', relay.url, {
      oidcToken: { serviceAccountEmail: SERVICE_ACCOUNT, audience: AUDIENCE },
    });
    messageIds = await emulator.publish('fleet-events', published);
    await waitFor(
      async () => receiver.received('/ack/204').length >= published.length,
      20_000,
      'three pushes',
    );
  }, 60_000);

  it.each(published.map((m, i) => [m.attributes.kind, i] as const))(
    'delivers the %s message in the documented wrapped shape',
    (_kind, i) => {
      // Prepare
      const sent = published[i]!;
      const id = messageIds[i]!;

      // Act
      const pushes = receiver.received('/ack/204').filter((r) => r.body.message.messageId === id);

      // Assess
      expect(pushes).toHaveLength(1);
      const { body, headers } = pushes[0]!;
      expect(Object.keys(body).sort()).toEqual(Object.keys(DOCUMENTED_PUSH_BODY).sort());
      expect(Object.keys(body.message).sort()).toEqual(Object.keys(DOCUMENTED_PUSH_BODY.message).sort());
      expect(body.subscription).toBe(`projects/${emulator.projectId}/subscriptions/fleet-events-push`);
      expect(body.message.attributes).toEqual(sent.attributes);
      expect(Buffer.from(body.message.data!, 'base64')).toEqual(
        typeof sent.data === 'string' ? Buffer.from(sent.data) : sent.data,
      );
      expect(body.message.message_id).toBe(id);
      expect(body.message.publish_time).toBe(body.message.publishTime);
      expect(body.message.publishTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
      expect(Math.abs(Date.parse(body.message.publishTime) - Date.now())).toBeLessThan(120_000);
      expect(headers['content-type']).toMatch(/^application\/json/);
    },
  );

  it('gives every message its own id', () => {
    expect(new Set(messageIds).size).toBe(published.length);
  });

  it('relays each push with a google-style oidc token that verifies', async () => {
    // Prepare
    const pushes = receiver.received('/ack/204');

    // Act
    const verified: JWTPayload[] = [];
    for (const push of pushes) {
      const token = /^Bearer (.+)$/.exec(push.headers.authorization ?? '')?.[1] ?? '';
      const { payload } = await jwtVerify(token, keys.publicKey, {
        issuer: 'https://accounts.google.com',
        audience: AUDIENCE,
        algorithms: ['RS256'],
      });
      verified.push(payload);
    }

    // Assess
    expect(verified).toHaveLength(published.length);
    for (const claims of verified) {
      expect(Object.keys(claims).sort()).toEqual(DOCUMENTED_CLAIMS);
      expect(claims).toMatchObject({ email: SERVICE_ACCOUNT, email_verified: true });
      expect(claims.sub).toMatch(/^\d{21}$/);
      expect(claims.azp).toBe(claims.sub);
      expect(claims.exp! - claims.iat!).toBe(3600);
    }
  });

  it('records every relayed push with the status it answered', () => {
    expect(relay.pushes.map((p) => p.status)).toEqual([204, 204, 204]);
    expect(relay.pushes.map((p) => p.messageId).sort()).toEqual([...messageIds].sort());
    for (const push of relay.pushes) {
      expect(push.subscription).toBe(`projects/${emulator.projectId}/subscriptions/fleet-events-push`);
      expect(push.receivedAt.getTime()).toBeLessThanOrEqual(Date.now());
    }
  });

  it('sends no token itself even when pushConfig.oidcToken is set', async () => {
    // Prepare
    await emulator.createTopic('direct-events');
    await emulator.createPushSubscription('direct-push', 'direct-events', receiver.url('/ack/200'), {
      oidcToken: { serviceAccountEmail: SERVICE_ACCOUNT, audience: AUDIENCE },
    });

    // Act
    const [id] = await emulator.publish('direct-events', [
      { data: 'no relay', attributes: { via: 'direct' } },
    ]);
    await waitFor(async () => receiver.received('/ack/200').length > 0, 20_000, 'direct push');

    // Assess
    const [push] = receiver.received('/ack/200');
    expect(push!.body.message.messageId).toBe(id);
    expect(push!.headers.authorization).toBeUndefined();
  });

  // 204 is covered by the three messages above: one push each.
  it.each([200, 201])('takes %i as an acknowledgement and does not redeliver', async (status) => {
    // Prepare
    const path = `/ack/${status}`;
    const relay = await relayTo(path);
    await emulator.createTopic(`ack-${status}`);
    await emulator.createPushSubscription(`ack-${status}-push`, `ack-${status}`, relay.url);

    // Act
    const [id] = await emulator.publish(`ack-${status}`, [{ data: `ack ${status}` }]);
    await waitFor(
      async () => receiver.received(path).some((r) => r.body.message.messageId === id),
      20_000,
      'push',
    );
    await sleep(2500);

    // Assess
    expect(receiver.received(path).filter((r) => r.body.message.messageId === id)).toHaveLength(1);
    expect(relay.pushes.map((p) => p.status)).toEqual([status]);
  });

  it('unlike Google, takes 202 as a negative acknowledgement and redelivers', async () => {
    // Prepare: Google documents 102, 200, 201, 202 and 204 as acknowledgements.
    const relay = await relayTo('/ack/202');
    await emulator.createTopic('ack-202');
    await emulator.createPushSubscription('ack-202-push', 'ack-202', relay.url);

    // Act
    const [id] = await emulator.publish('ack-202', [{ data: 'accepted' }]);
    await waitFor(async () => receiver.received('/ack/202').length >= 2, 20_000, 'a redelivery');

    // Assess
    expect(
      receiver
        .received('/ack/202')
        .slice(0, 2)
        .map((r) => r.body.message.messageId),
    ).toEqual([id, id]);
    expect(relay.pushes.slice(0, 2).map((p) => p.status)).toEqual([202, 202]);
  });

  it.each([500, 503, 429, 404])(
    'redelivers a message answered %i until it is acknowledged',
    async (status) => {
      // Prepare
      const path = `/nack/${status}/2`;
      const relay = await relayTo(path);
      await emulator.createTopic(`nack-${status}`);
      await emulator.createPushSubscription(`nack-${status}-push`, `nack-${status}`, relay.url);

      // Act
      const [id] = await emulator.publish(`nack-${status}`, [
        { data: `nack ${status}`, attributes: { try: 'me' } },
      ]);
      await waitFor(async () => receiver.received(path).length >= 3, 30_000, 'three deliveries');
      await sleep(2500);

      // Assess
      const deliveries = receiver.received(path);
      expect(deliveries.map((d) => d.body.message.messageId)).toEqual([id, id, id]);
      expect(deliveries.map((d) => d.body.message.attributes)).toEqual([
        { try: 'me' },
        { try: 'me' },
        { try: 'me' },
      ]);
      expect(relay.pushes.map((p) => p.status)).toEqual([status, status, 204]);
      const times = relay.pushes.map((p) => p.receivedAt.getTime());
      expect(times).toEqual([...times].sort((a, b) => a - b));
    },
  );

  it('answers 502 and is redelivered when the relay target is down', async () => {
    // Prepare
    const relay = await startPushAuthRelay({
      target: 'http://127.0.0.1:9/unreachable',
      sign,
      serviceAccountEmail: SERVICE_ACCOUNT,
    });
    relays.push(relay);
    await emulator.createTopic('down-events');
    await emulator.createPushSubscription('down-push', 'down-events', relay.url);

    // Act
    const [id] = await emulator.publish('down-events', [{ data: 'nobody home' }]);
    await waitFor(async () => relay.pushes.length >= 2, 20_000, 'two attempts');

    // Assess
    expect(relay.pushes.slice(0, 2).map((p) => [p.status, p.messageId])).toEqual([
      [502, id],
      [502, id],
    ]);
  });
});

describe('pubsub emulator availability', () => {
  it('names an emulator directory without the jar as not found', () => {
    // Prepare
    const empty = mkdtempSync(join(tmpdir(), 'fleetward-no-pubsub-'));
    try {
      // Act
      const act = () => pubsubEmulatorJar({ PUBSUB_EMULATOR_DIR: empty });

      // Assess
      expect(act).toThrow(PubSubEmulatorNotFoundError);
      expect(act).toThrow(/gcloud components install pubsub-emulator/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('names a machine without gcloud as missing the emulator, with the install step', () => {
    // Act
    const reason = pubsubEmulatorMissing({}, () => undefined);

    // Assess
    expect(reason).toMatch(/^pubsub emulator not found: run `gcloud components install pubsub-emulator`/);
  });

  it('names a machine with the emulator but without java as missing java', () => {
    // Prepare: an emulator directory with a jar, and a JAVA_HOME without java
    const dir = mkdtempSync(join(tmpdir(), 'fleetward-pubsub-jar-'));
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'lib', 'cloud-pubsub-emulator-0.8.0-all.jar'), '');
    try {
      // Act
      const reason = pubsubEmulatorMissing({ PUBSUB_EMULATOR_DIR: dir, JAVA_HOME: join(dir, 'no-jdk') });

      // Assess
      expect(reason).toMatch(/^java not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pubsub emulator helpers', () => {
  needsEmulator();

  it.each([
    ['a too-short topic id', () => emulator.createTopic('ab')],
    ['a topic id starting with a digit', () => emulator.createTopic('1topic')],
    [
      'a subscription of a missing topic',
      () => emulator.createPushSubscription('orphan-push', 'no-such-topic', receiver.url('/ack/204')),
    ],
  ])('rejects %s with a pubsub emulator error', async (_what, act) => {
    const error = await act().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PubSubEmulatorError);
    expect((error as PubSubEmulatorError).status).toBeGreaterThanOrEqual(400);
    expect((error as PubSubEmulatorError).message).toMatch(/^pubsub create (topic|subscription) failed$/);
  });

  it('treats creating an existing topic as done', async () => {
    await emulator.createTopic('twice-created');
    await expect(emulator.createTopic('twice-created')).resolves.toBeUndefined();
  });

  it('refuses a push endpoint off loopback', async () => {
    await emulator.createTopic('loopback-only');
    await expect(
      emulator.createPushSubscription('leaky-push', 'loopback-only', 'https://example.com/push'),
    ).rejects.toThrow(/non-loopback/);
  });

  it('finds the jar under CLOUDSDK_ROOT', () => {
    const sdkRoot = join(pubsubEmulatorJar(), '..', '..', '..', '..');
    expect(pubsubEmulatorJar({ CLOUDSDK_ROOT: sdkRoot }, () => undefined)).toMatch(
      /platform[/\\]pubsub-emulator[/\\]lib[/\\]cloud-pubsub-emulator-.+\.jar$/,
    );
  });
});

describe('pubsub emulator lifecycle', () => {
  needsEmulator();

  const isAlive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('is gone, with its whole process group, after stop', async () => {
    // Prepare
    const dataDir = mkdtempSync(join(tmpdir(), 'fleetward-pubsub-data-'));
    const own = await startPubSubEmulator({ dataDir });
    try {
      expect(isAlive(own.pid)).toBe(true);
      expect(await (await fetch(`http://${own.host}/v1/projects/${own.projectId}/topics`)).json()).toEqual(
        {},
      );

      // Act
      await own.stop();

      // Assess
      expect(isAlive(own.pid)).toBe(false);
      expect(isAlive(-own.pid)).toBe(false);
      await expect(fetch(`http://${own.host}/`)).rejects.toThrow();
      await expect(own.stop()).resolves.toBeUndefined();
    } finally {
      await own.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
