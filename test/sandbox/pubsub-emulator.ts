/**
 * Google's Pub/Sub emulator (the real one shipped with the Google Cloud SDK) as one Java
 * process on a free loopback port, plus a relay that adds the OIDC token Google's push
 * service would add.
 *
 * The emulator is started the way its `bin/cloud-pubsub-emulator` launcher starts it
 * (`java -jar lib/cloud-pubsub-emulator-<version>-all.jar --host=… --port=…`, main class
 * `com.google.cloud.pubsub.testing.v1.Main` from the jar's manifest), but directly, so the
 * PID we hold is the JVM's. It runs in its own process group, and `stop()` signals that
 * group (SIGTERM, then SIGKILL after a timeout) and checks that nothing in it survived.
 * It keeps all state in memory: there is no data directory flag (gcloud's `--data-dir` only
 * holds gcloud's own env file), so `dataDir` is merely the process' working and temporary
 * directory.
 *
 * Findings about the emulator (checked against version 0.8.20, asserted by
 * `test/contract/pubsub-emulator.contract.test.ts`):
 * - It pushes the wrapped JSON body Google documents for push subscriptions
 *   (`{ message: { attributes, data, messageId, message_id, publishTime, publish_time },
 *   subscription }`), `Content-Type: application/json`, no `deliveryAttempt`.
 * - It accepts and echoes `pushConfig.oidcToken` but does NOT attach a token: push requests
 *   carry no `Authorization` header. {@link startPushAuthRelay} fills that gap.
 * - Any non-2xx answer is a nack: it redelivers the same message (same `messageId`) about
 *   once a second until an endpoint acknowledges it (at-least-once delivery). Unlike
 *   Google, which documents 102, 200, 201, 202 and 204 as acknowledgements, the emulator
 *   takes 202 as a nack too; 200, 201 and 204 acknowledge.
 * - Resource names follow the real rules (a topic or subscription id has 3 to 255
 *   characters and starts with a letter); violations answer 400 `INVALID_ARGUMENT`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetwardError } from '../../shared/runtime/errors.ts';
import { alive, assertLoopback, freePort, waitFor } from './net.ts';

/** The Pub/Sub emulator (or Java) is not installed where we looked; the message says where to get it. */
export class PubSubEmulatorNotFoundError extends FleetwardError {
  /** The directories searched, in order. */
  readonly searched: string[];
  constructor(message: string, searched: string[], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PubSubEmulatorNotFoundError';
    this.searched = searched;
  }
}

/** A REST call to the emulator failed. */
export class PubSubEmulatorError extends FleetwardError {
  readonly operation: string;
  readonly status: number | undefined;
  /** The emulator's `error.status` (for example `INVALID_ARGUMENT`), when it sent one. */
  readonly code: string | undefined;
  constructor(
    message: string,
    details: { operation: string; status?: number | undefined; code?: string | undefined },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PubSubEmulatorError';
    this.operation = details.operation;
    this.status = details.status;
    this.code = details.code;
  }
}

/** How the emulator is started. */
export interface PubSubEmulatorOptions {
  /** Port on 127.0.0.1 (default: a free one). */
  port?: number;
  /** Working and temporary directory of the JVM (default: a fresh one, removed by `stop()`). */
  dataDir?: string;
  /** Project every helper call uses (default `fleetward-test`); the emulator accepts any. */
  projectId?: string;
  /** How long to wait for the JVM to answer (default 60 s). */
  timeoutMs?: number;
}

/** One message to publish; `data` is sent base64-encoded, as the REST API wants it. */
export interface PubSubOutgoingMessage {
  data: string | Buffer;
  attributes?: Record<string, string>;
}

/** `pushConfig` extras of a push subscription. */
export interface PushSubscriptionOptions {
  /** `pushConfig.attributes` (for example `{ 'x-goog-version': 'v1' }`). */
  attributes?: Record<string, string>;
  /** `pushConfig.oidcToken`: stored and echoed by the emulator, but no token is ever sent. */
  oidcToken?: { serviceAccountEmail: string; audience?: string };
  /** Seconds before an unacknowledged push is redelivered (default 10). */
  ackDeadlineSeconds?: number;
}

/** A running emulator and REST helpers bound to its {@link PubSubEmulator.projectId}. */
export interface PubSubEmulator {
  /** `127.0.0.1:<port>`, the value of `PUBSUB_EMULATOR_HOST`. */
  host: string;
  projectId: string;
  /** The JVM's PID (also its process group id). */
  pid: number;
  /** Creates `projects/<p>/topics/<name>`; one that exists already is fine. */
  createTopic(name: string): Promise<void>;
  /** Creates a push subscription of `topic` that POSTs each message to `pushEndpoint` (loopback only). */
  createPushSubscription(
    name: string,
    topic: string,
    pushEndpoint: string,
    options?: PushSubscriptionOptions,
  ): Promise<void>;
  /** Publishes the messages in one request; the message ids, in order. */
  publish(topic: string, messages: PubSubOutgoingMessage[]): Promise<string[]>;
  /** Stops the JVM's process group (SIGTERM, then SIGKILL after 5 s) and removes the directory it created. */
  stop(): Promise<void>;
}

const EMULATOR_JAR = /^cloud-pubsub-emulator-.*\.jar$/;

function sdkRootFromGcloud(): string | undefined {
  try {
    const root = execFileSync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 30_000,
    }).trim();
    return root || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The emulator's jar: under `PUBSUB_EMULATOR_DIR`, else under
 * `<CLOUDSDK_ROOT>/platform/pubsub-emulator`, else under the SDK root `gcloud info` reports.
 * Throws {@link PubSubEmulatorNotFoundError} naming what it searched.
 */
export function pubsubEmulatorJar(
  env: NodeJS.ProcessEnv = process.env,
  sdkRoot: () => string | undefined = sdkRootFromGcloud,
): string {
  const candidates: string[] = [];
  if (env.PUBSUB_EMULATOR_DIR) candidates.push(env.PUBSUB_EMULATOR_DIR);
  else {
    const root = env.CLOUDSDK_ROOT || sdkRoot();
    if (root) candidates.push(join(root, 'platform', 'pubsub-emulator'));
  }
  for (const dir of candidates) {
    const lib = join(dir, 'lib');
    if (!existsSync(lib)) continue;
    const jar = readdirSync(lib)
      .filter((f) => EMULATOR_JAR.test(f))
      .sort()
      .at(-1);
    if (jar) return join(lib, jar);
  }
  throw new PubSubEmulatorNotFoundError(
    'pubsub emulator not found: run `gcloud components install pubsub-emulator` (or set PUBSUB_EMULATOR_DIR)',
    candidates,
  );
}

function javaCommand(env: NodeJS.ProcessEnv = process.env): string {
  return env.JAVA_HOME ? join(env.JAVA_HOME, 'bin', 'java') : 'java';
}

const JAVA_MISSING = 'java not found: install a java 17 runtime (or set JAVA_HOME)';

let missingHere: { reason: string | undefined } | undefined;

/**
 * Why the emulator cannot run on this machine (its jar or java is missing; one of this
 * project's machine images has no gcloud at all), or `undefined` when it can. Tests that need
 * the emulator skip with this reason as the skip's note, so the skip is visible and counted;
 * the rest of the suite runs. Checked once per process for the process' own environment.
 */
export function pubsubEmulatorMissing(
  env: NodeJS.ProcessEnv = process.env,
  sdkRoot: () => string | undefined = sdkRootFromGcloud,
): string | undefined {
  const own = env === process.env && sdkRoot === sdkRootFromGcloud;
  if (own && missingHere) return missingHere.reason;
  let reason: string | undefined;
  try {
    pubsubEmulatorJar(env, sdkRoot);
    execFileSync(javaCommand(env), ['-version'], { stdio: 'ignore', timeout: 30_000 });
  } catch (error) {
    reason = error instanceof PubSubEmulatorNotFoundError ? error.message : JAVA_MISSING;
  }
  if (own) missingHere = { reason };
  return reason;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

/** Starts the emulator on 127.0.0.1 and waits until its REST API answers. */
export async function startPubSubEmulator(options: PubSubEmulatorOptions = {}): Promise<PubSubEmulator> {
  const jar = pubsubEmulatorJar();
  const port = options.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;
  const projectId = options.projectId ?? 'fleetward-test';
  const ownDir = options.dataDir === undefined;
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'fleetward-pubsub-'));
  const child: ChildProcess = spawn(
    javaCommand(),
    [`-Djava.io.tmpdir=${dir}`, '-jar', jar, '--host=127.0.0.1', `--port=${port}`],
    // Its own process group, so stop() can signal the JVM and anything it might fork at once.
    { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  const pid = child.pid;
  // Last resort if the test runner exits without calling stop(): never leave a JVM behind.
  const onExit = () => {
    if (pid !== undefined) signalGroup(pid, 'SIGKILL');
  };
  process.once('exit', onExit);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (pid !== undefined) {
        if (child.exitCode === null && child.signalCode === null) {
          signalGroup(pid, 'SIGTERM');
          const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        // The JVM is gone; anything left in its group would be an orphan: kill it.
        if (alive(-pid)) signalGroup(pid, 'SIGKILL');
        await waitFor(async () => !alive(-pid), 5000, 'pubsub emulator process group exit');
      }
      process.removeListener('exit', onExit);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const base = `http://${host}/v1/projects/${encodeURIComponent(projectId)}`;
  try {
    if (pid === undefined) throw new Error('no pid');
    await waitFor(
      async () => {
        if (spawnError) throw spawnError;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`pubsub emulator exited: ${output}`);
        }
        const response = await fetch(`${base}/topics`, { signal: AbortSignal.timeout(2000) });
        await response.arrayBuffer();
        return response.ok;
      },
      options.timeoutMs ?? 60_000,
      'pubsub emulator',
    );
  } catch (error) {
    await stop();
    if (spawnError) {
      throw new PubSubEmulatorNotFoundError(JAVA_MISSING, [], {
        cause: spawnError,
      });
    }
    throw new PubSubEmulatorError(
      'pubsub emulator did not start',
      { operation: 'start' },
      { cause: new Error(`${(error as Error).message}\n${output}`) },
    );
  }
  // Keep draining its output so the pipes never fill.
  child.stdout?.resume();
  child.stderr?.resume();

  const call = async (operation: string, method: string, path: string, body: unknown): Promise<unknown> => {
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    } catch (cause) {
      throw new PubSubEmulatorError(`pubsub ${operation} failed`, { operation }, { cause });
    }
    const text = await response.text();
    const json = text ? (JSON.parse(text) as unknown) : {};
    if (!response.ok) {
      const error = (json as { error?: { status?: string; message?: string } }).error;
      throw new PubSubEmulatorError(
        `pubsub ${operation} failed`,
        { operation, status: response.status, code: error?.status },
        { cause: new Error(error?.message ?? text) },
      );
    }
    return json;
  };

  return {
    host,
    projectId,
    pid,
    async createTopic(name) {
      try {
        await call('create topic', 'PUT', `/topics/${encodeURIComponent(name)}`, {});
      } catch (error) {
        // A retried set-up finds its own topic: that is success.
        if (error instanceof PubSubEmulatorError && error.status === 409) return;
        throw error;
      }
    },
    async createPushSubscription(name, topic, pushEndpoint, subscriptionOptions = {}) {
      assertLoopback(pushEndpoint);
      await call('create subscription', 'PUT', `/subscriptions/${encodeURIComponent(name)}`, {
        topic: `projects/${projectId}/topics/${topic}`,
        ackDeadlineSeconds: subscriptionOptions.ackDeadlineSeconds ?? 10,
        pushConfig: {
          pushEndpoint,
          ...(subscriptionOptions.attributes ? { attributes: subscriptionOptions.attributes } : {}),
          ...(subscriptionOptions.oidcToken ? { oidcToken: subscriptionOptions.oidcToken } : {}),
        },
      });
    },
    async publish(topic, messages) {
      const result = (await call('publish', 'POST', `/topics/${encodeURIComponent(topic)}:publish`, {
        messages: messages.map((m) => ({
          data: (typeof m.data === 'string' ? Buffer.from(m.data, 'utf8') : m.data).toString('base64'),
          ...(m.attributes ? { attributes: m.attributes } : {}),
        })),
      })) as { messageIds?: string[] };
      return result.messageIds ?? [];
    },
    stop,
  };
}

// --- the push auth relay ---

/** The claims of the OIDC token Google's push service sends (documented in "Authentication for push subscriptions"). */
export interface PushTokenClaims {
  iss: 'https://accounts.google.com';
  aud: string;
  azp: string;
  email: string;
  email_verified: true;
  sub: string;
  iat: number;
  exp: number;
}

/** How the relay signs and where it forwards. */
export interface PushAuthRelayOptions {
  /** The real push endpoint (loopback only); every push is POSTed there. */
  target: string;
  /** Signs the claims into a compact JWT (RS256, as Google does). */
  sign: (claims: PushTokenClaims) => Promise<string>;
  /** `aud` of the token; Google's default is the push endpoint URL, so the default is `target`. */
  audience?: string;
  /** The subscription's `oidcToken.serviceAccountEmail`: the token's `email`. */
  serviceAccountEmail: string;
  /** `sub` and `azp` of the token (Google: the service account's numeric unique id); default derived from the email. */
  subject?: string;
  /** Token lifetime in seconds (Google's tokens last an hour). */
  lifetimeSeconds?: number;
  /** Clock, for tests (default `Date.now`). */
  now?: () => number;
}

/** One push the relay handled. */
export interface RelayedPush {
  /** When the relay received it. */
  receivedAt: Date;
  /** What the relay answered the emulator: the target's status, or 502 when the target was unreachable. */
  status: number;
  /** `message.messageId` of the body, when it has one. */
  messageId: string | undefined;
  /** `subscription` of the body, when it has one. */
  subscription: string | undefined;
}

/** A running relay. */
export interface PushAuthRelay {
  /** `http://127.0.0.1:<port>/push`: the `pushEndpoint` to give the emulator. */
  url: string;
  /** Every push so far, in arrival order. */
  pushes: RelayedPush[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'authorization',
  'connection',
  'content-length',
  'host',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function forwardedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** A stable 21-digit id for an email, shaped like a service account's unique id. */
function numericId(email: string): string {
  const digest = createHash('sha256').update(email).digest();
  return `1${digest.readBigUInt64BE(0).toString().padStart(20, '0').slice(0, 20)}`;
}

/**
 * A loopback HTTP relay between the emulator and a push endpoint. The emulator ignores
 * `pushConfig.oidcToken`, so the relay does what Google's push service does: it signs a
 * Google-style OIDC token (`iss` `https://accounts.google.com`, `aud`, `azp`, `email`,
 * `email_verified: true`, `sub`, `iat`, `exp`) for every push, sends it as
 * `Authorization: Bearer <JWT>` together with the original body and headers to `target`,
 * answers the emulator with the target's status (so nacks still cause redelivery), and
 * records each push.
 */
export async function startPushAuthRelay(options: PushAuthRelayOptions): Promise<PushAuthRelay> {
  assertLoopback(options.target);
  const audience = options.audience ?? options.target;
  const subject = options.subject ?? numericId(options.serviceAccountEmail);
  const lifetime = options.lifetimeSeconds ?? 3600;
  const now = options.now ?? Date.now;
  const pushes: RelayedPush[] = [];

  const server = createServer((req, res) => {
    const receivedAt = new Date(now());
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      let parsed: { message?: { messageId?: unknown }; subscription?: unknown } = {};
      try {
        parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
      } catch {
        // not JSON: forwarded as it is, recorded without ids
      }
      let status: number;
      try {
        const iat = Math.floor(now() / 1000);
        const token = await options.sign({
          iss: 'https://accounts.google.com',
          aud: audience,
          azp: subject,
          email: options.serviceAccountEmail,
          email_verified: true,
          sub: subject,
          iat,
          exp: iat + lifetime,
        });
        const response = await fetch(options.target, {
          method: req.method ?? 'POST',
          headers: { ...forwardedHeaders(req.headers), authorization: `Bearer ${token}` },
          ...(body.length > 0 ? { body: new Uint8Array(body) } : {}),
        });
        await response.arrayBuffer();
        status = response.status;
      } catch {
        status = 502;
      }
      pushes.push({
        receivedAt,
        status,
        messageId: typeof parsed.message?.messageId === 'string' ? parsed.message.messageId : undefined,
        subscription: typeof parsed.subscription === 'string' ? parsed.subscription : undefined,
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/push`,
    pushes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
