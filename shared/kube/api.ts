/**
 * One cluster's Kubernetes API (the `KubeApi` port) on `@kubernetes/client-node`: an
 * in-memory `KubeConfig` (server and CA) and one `KubernetesObjectApi`, which resolves
 * each `apiVersion`/`kind` through API discovery and caches the answer for the life of
 * the instance (so there is exactly one per `KubeApi`).
 *
 * Every call runs as attempts (`withRetry`): each attempt takes a slot of the shared
 * limiter, carries the current bearer token and one deadline of `timeoutMs` (joined to
 * the caller's signal) that covers every request of the attempt (discovery included) and
 * the reading of each answer. 429, 5xx, network errors and deadlines are retried with
 * backoff (Retry-After honoured) up to `maxAttempts`; a 401 refreshes the token once and
 * runs the call once more.
 *
 * `KubernetesObjectApi` takes no per-call options its requests would honour, so what is
 * per attempt (token, deadline) travels in an `AsyncLocalStorage` and is applied by our
 * auth method and our HTTP library (a wrapper of the client's fetch library). The wrapper
 * also reads each answer in full, keeps its raw JSON (callers get the objects exactly as
 * the server sent them, not the client's model classes with `Date`s) and closes the
 * undici agent the client makes for every request.
 *
 * Tokens are never put in messages, logs or errors.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import {
  ApiException,
  createConfiguration,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  type RequestContext,
  ResponseContext,
  SelfDecodingBody,
  ServerConfiguration,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import type { KubeApi, KubeObject, KubeRef, Log } from '../ports.ts';
import type { Limiter } from '../runtime/concurrency.ts';
import { CloudApiError } from '../runtime/errors.ts';
import { isHtmlContentType, unreachable } from '../runtime/network.ts';
import { parseRetryAfter, type RetryDecision, withRetry } from '../runtime/retry.ts';

const CLOUD = 'kube';
/** The service named in `cannot reach kubernetes api at <server>: …`. */
const SERVICE = 'kubernetes api';
/** Objects asked per list page; further pages follow `metadata.continue`. */
export const LIST_PAGE_SIZE = 500;

export interface KubeApiOptions {
  /** `https://host[:port][/path prefix]` of the API server. */
  server: string;
  /** PEM of the CA that signed the server's certificate; default: Node's trusted roots. */
  ca?: string | undefined;
  /** Name to verify the server certificate against instead of the server's host (kubeconfig `tls-server-name`). */
  tlsServerName?: string | undefined;
  /** Skips certificate verification (only when a kubeconfig asks for it explicitly). */
  insecureSkipTlsVerify?: boolean | undefined;
  /** The current bearer token (may be cached by the provider). */
  token: () => Promise<string>;
  /** A new bearer token, after the server refused the current one. */
  refresh: () => Promise<string>;
  /** Per-attempt deadline, in milliseconds. */
  timeoutMs: number;
  /** Attempts per call, including the first. */
  maxAttempts: number;
  /** Shared limit of calls in flight (across clusters); each attempt takes one slot. */
  limiter?: Limiter | undefined;
  /** Aborts every call of this API; an aborted call rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Cluster id, named in errors and logs. */
  cluster: string;
  logger?: Log | undefined;
  /** Retry backoff base (default 200 ms); tests shorten it. */
  baseDelayMs?: number | undefined;
}

/** What one attempt carries to the auth method and the HTTP library. */
interface Attempt {
  token: string;
  deadline: AbortSignal;
  signal: AbortSignal;
  /** The text of the last answer of the attempt. */
  body?: string;
}

/** A deadline of one attempt fired (the caller's signal did not). */
class AttemptTimeout extends Error {
  constructor(timeoutMs: number, options?: { cause?: unknown }) {
    super(`no answer within ${timeoutMs} ms`, options);
    this.name = 'AttemptTimeout';
  }
}

/** The token of the attempt was refused (HTTP 401). */
class Unauthorized extends Error {
  readonly generation: number;
  constructor(generation: number, cause: unknown) {
    super('unauthorized', { cause });
    this.name = 'Unauthorized';
    this.generation = generation;
  }
}

/**
 * What answered is a web page (a proxy's, a login page), not the API server: whatever its
 * status, it is neither an object nor a Kubernetes `Status` (a 404 page is not an absent object).
 */
class HtmlAnswer extends Error {
  readonly status: number;
  readonly contentType: string;
  constructor(status: number, contentType: string) {
    super(`answered ${status} with ${contentType}`);
    this.name = 'HtmlAnswer';
    this.status = status;
    this.contentType = contentType;
  }
}

/** The cluster does not serve the kind (no API group/version, or no such kind in it). */
class KindNotServed extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KindNotServed';
  }
}

const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** `code` of a network error (undici puts it on `cause`). */
function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function retryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

function classify(error: unknown): RetryDecision {
  if (error instanceof AttemptTimeout) return { retry: true };
  if (error instanceof ApiException) {
    const status = error.code;
    if (!retryableStatus(status)) return { retry: false };
    const headers = (error.headers ?? {}) as Record<string, string | undefined>;
    return { retry: true, afterMs: parseRetryAfter(headers['retry-after']) };
  }
  if (error instanceof CloudApiError) return { retry: error.retryable };
  const code = networkCode(error);
  return { retry: code !== undefined && RETRYABLE_NETWORK_CODES.has(code) };
}

/** `reason` and `message` of a `meta/v1` Status body, when the body is one. */
function statusBody(body: unknown): { reason?: string; message?: string } {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return {};
    }
  }
  if (!value || typeof value !== 'object') return {};
  const { reason, message } = value as { reason?: unknown; message?: unknown };
  return {
    ...(typeof reason === 'string' && reason ? { reason } : {}),
    ...(typeof message === 'string' && message ? { message } : {}),
  };
}

function clip(text: string, max = 300): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** Removes a secret from a text (a server might echo what it was sent). */
function redact(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 8) out = out.replaceAll(secret, '[redacted]');
  return out;
}

/**
 * Resource names of the types Fleetward uses, as every API server publishes them. With
 * these known, the client skips one discovery request per API group per connection: a
 * quarter of all calls in a pass over the fleet. Other types are still discovered.
 */
const KNOWN_RESOURCES: Record<string, { name: string; kind: string; namespaced: boolean }[]> = {
  v1: [{ name: 'namespaces', kind: 'Namespace', namespaced: false }],
  'apps/v1': [
    { name: 'deployments', kind: 'Deployment', namespaced: true },
    { name: 'statefulsets', kind: 'StatefulSet', namespaced: true },
  ],
  'apiextensions.k8s.io/v1': [
    { name: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false },
  ],
  'velero.io/v1': [
    { name: 'backups', kind: 'Backup', namespaced: true },
    { name: 'restores', kind: 'Restore', namespaced: true },
    { name: 'backupstoragelocations', kind: 'BackupStorageLocation', namespaced: true },
  ],
};

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/**
 * Connection pools shared by every connection to the same origin with the same TLS
 * settings (several clusters behind one proxy, or reconnects in a warm Lambda): the same
 * keep-alive connections, one TLS handshake. Keyed by origin, CA digest and TLS options;
 * tokens are per request, never part of a pool.
 */
const POOLS = new Map<string, Dispatcher>();

class KnownResourcesObjectApi extends KubernetesObjectApi {
  constructor(configuration: ConstructorParameters<typeof KubernetesObjectApi>[0]) {
    super(configuration);
    for (const [groupVersion, resources] of Object.entries(KNOWN_RESOURCES)) {
      this.apiVersionResourceCache[groupVersion] = {
        groupVersion,
        resources: resources.map((r) => ({ ...r, singularName: r.kind.toLowerCase(), verbs: [] })),
      };
    }
  }
}

/** Names the object of a call in messages (` ns/name`, ` name`, ` in namespace ns`). */
function describeRef(ref: { name?: string | undefined; namespace?: string | undefined }): string {
  if (!ref.name) return ref.namespace ? ` in namespace ${ref.namespace}` : '';
  return ref.namespace ? ` ${ref.namespace}/${ref.name}` : ` ${ref.name}`;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function createKubeApi(options: KubeApiOptions): KubeApi {
  const { cluster, timeoutMs, maxAttempts, signal, logger } = options;
  const limiter: Limiter = options.limiter ?? ((task) => task());

  let url: URL;
  try {
    url = new URL(options.server);
  } catch (error) {
    throw new CloudApiError(
      `kube api of cluster ${cluster}: "${options.server}" is not a URL`,
      { cloud: CLOUD, operation: 'connect', retryable: false },
      { cause: error },
    );
  }
  if (url.protocol !== 'https:') {
    throw new CloudApiError(
      `kube api of cluster ${cluster}: refusing ${url.protocol} (bearer tokens are only sent over https)`,
      { cloud: CLOUD, operation: 'connect', retryable: false },
    );
  }
  const server = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;

  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'cluster',
        server,
        skipTLSVerify: options.insecureSkipTlsVerify === true,
        ...(options.ca ? { caData: Buffer.from(options.ca).toString('base64') } : {}),
        ...(options.tlsServerName ? { tlsServerName: options.tlsServerName } : {}),
      },
    ],
    // The bearer token is set per attempt (see `auth`), so a refreshed token applies to the next attempt only.
    users: [{ name: 'fleetward' }],
    contexts: [{ name: 'fleetward', cluster: 'cluster', user: 'fleetward' }],
    currentContext: 'fleetward',
  });

  const attempts = new AsyncLocalStorage<Attempt>();
  /**
   * The client builds a new undici Agent (so a new TLS handshake) for every request; using
   * one shared pool instead reuses keep-alive connections, which dominates the cost of a
   * pass over many clusters.
   */
  const poolKey = JSON.stringify([
    url.origin,
    options.ca ? createHash('sha256').update(options.ca).digest('hex') : '',
    options.tlsServerName ?? '',
    options.insecureSkipTlsVerify === true,
  ]);
  let pool = POOLS.get(poolKey);
  const auth = {
    getName: () => 'fleetward bearer token',
    async applySecurityAuthentication(context: RequestContext): Promise<void> {
      // TLS (CA, server name) as the KubeConfig says; the client makes an undici agent for it.
      await kc.applySecurityAuthentication(context);
      const fresh = context.getDispatcher();
      if (!pool && fresh) {
        pool = fresh;
        POOLS.set(poolKey, fresh);
      } else if (fresh && fresh !== pool) {
        fresh.close().catch(() => {});
        context.setDispatcher(pool!);
      }
      const attempt = attempts.getStore();
      if (attempt) context.setHeaderParam('Authorization', `Bearer ${attempt.token}`);
      context.setHeaderParam('User-Agent', 'fleetward');
    },
  };
  const fetchLibrary = new IsomorphicFetchHttpLibrary();
  const httpApi = wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      const attempt = attempts.getStore();
      const dispatcher = request.getDispatcher();
      if (attempt) request.setSignal(attempt.signal);
      try {
        const response = await fetchLibrary.send(request).toPromise();
        const contentType = response.headers['content-type'];
        if (isHtmlContentType(contentType)) {
          await response.body.text().catch(() => undefined);
          throw new HtmlAnswer(response.httpStatusCode, contentType!);
        }
        // Read in full under the deadline, so a stalled body times out too.
        const text = await response.body.text();
        if (attempt) attempt.body = text;
        return new ResponseContext(
          response.httpStatusCode,
          response.headers,
          new SelfDecodingBody(Promise.resolve(Buffer.from(text))),
        );
      } catch (error) {
        if (attempt?.deadline.aborted && !signal?.aborted)
          throw new AttemptTimeout(timeoutMs, { cause: error });
        throw error;
      } finally {
        // Any agent other than the shared pool was made for this request only.
        if (dispatcher && dispatcher !== pool) dispatcher.close().catch(() => {});
      }
    },
  });
  const objects = new KnownResourcesObjectApi(
    createConfiguration({
      baseServer: new ServerConfiguration(server, {}),
      authMethods: { default: auth },
      httpApi,
    }),
  );

  // --- tokens: the provider caches them (it knows their lifetime); a refusal refreshes once ---
  // (concurrent refusals of the same token share one refresh; attempts wait for a refresh in flight).
  let generation = 0;
  let refreshing: Promise<void> | undefined;
  /** The last tokens handed out, redacted from any message (a server might echo one). */
  const secrets = new Set<string>();
  const keep = (token: string): string => {
    secrets.delete(token);
    secrets.add(token);
    if (secrets.size > 4) secrets.delete(secrets.values().next().value!);
    return token;
  };
  /** The token to present and the generation it belongs to (a refusal of it refreshes that generation). */
  const currentToken = async (): Promise<{ token: string; generation: number }> => {
    if (refreshing) await refreshing.catch(() => undefined);
    const current = generation;
    return { token: keep(await options.token()), generation: current };
  };
  const refreshToken = async (refused: number): Promise<void> => {
    if (refused === generation) {
      generation++;
      refreshing = options.refresh().then((token) => {
        keep(token);
      });
      logger?.info('Kube token refreshed', { cluster });
    }
    await refreshing;
  };

  // --- calls ---

  const abortReason = () => signal?.reason ?? new DOMException('kube call aborted', 'AbortError');

  /** One attempt: a limiter slot, the token, a deadline; resolves to the raw text of the last answer. */
  async function attempt(send: (api: KubernetesObjectApi) => Promise<unknown>): Promise<string | undefined> {
    if (signal?.aborted) throw abortReason();
    const { token, generation: used } = await currentToken();
    return limiter(async () => {
      if (signal?.aborted) throw abortReason();
      const deadline = AbortSignal.timeout(timeoutMs);
      const state: Attempt = {
        token,
        deadline,
        signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      };
      try {
        await attempts.run(state, () => send(objects));
      } catch (error) {
        if (error instanceof ApiException && error.code === 401) throw new Unauthorized(used, error);
        if (error instanceof Error && /^Unrecognized API version and kind/.test(error.message)) {
          throw new KindNotServed(error.message, { cause: error });
        }
        throw error;
      }
      return state.body;
    });
  }

  function wrap(error: unknown, operation: string, target: string): CloudApiError {
    // Ours already (a token provider's, or one raised below): wrapped once, where it entered.
    if (error instanceof CloudApiError) return error;
    const prefix = `kube ${operation}${target} on cluster ${cluster} failed`;
    let cause = error;
    if (error instanceof Unauthorized) cause = error.cause;
    let message: string;
    let status: number | undefined;
    if (cause instanceof ApiException) {
      status = cause.code;
      const body = statusBody(cause.body);
      const what = [status, body.reason].filter((p) => p !== undefined).join(' ');
      message = `${prefix}: HTTP ${what}${body.message ? `: ${clip(body.message)}` : ''}`;
    } else if (cause instanceof AttemptTimeout) {
      message = `${prefix}: no answer within ${timeoutMs} ms`;
    } else if (cause instanceof KindNotServed) {
      status = 404;
      message = `${prefix}: the cluster does not serve this kind`;
    } else {
      // A refused connection, failed DNS lookup, rejected certificate, reset or web page.
      const down = unreachable(cause, {
        cloud: CLOUD,
        operation,
        service: SERVICE,
        endpoint: server,
        status: cause instanceof HtmlAnswer ? cause.status : undefined,
        contentType: cause instanceof HtmlAnswer ? cause.contentType : undefined,
      });
      if (down) return down;
      const code = networkCode(cause);
      const detail = cause instanceof Error ? cause.message : String(cause);
      message = `${prefix}: ${code ? `${code}: ` : ''}${clip(detail)}`;
    }
    return new CloudApiError(
      redact(message, secrets),
      { cloud: CLOUD, operation, status, retryable: classify(cause).retry },
      { cause },
    );
  }

  /** Runs a call: retried attempts, and once more with a refreshed token after a 401. */
  async function call(
    operation: string,
    target: string,
    send: (api: KubernetesObjectApi) => Promise<unknown>,
  ): Promise<string | undefined> {
    let refreshed = false;
    for (;;) {
      try {
        return await withRetry(() => attempt(send), classify, {
          maxAttempts,
          baseDelayMs: options.baseDelayMs ?? 200,
          maxDelayMs: 10_000,
          signal,
          onRetry: ({ attempt: n, delayMs, error }) =>
            logger?.info('Kube call retried', {
              cluster,
              operation,
              attempt: n,
              delayMs,
              ...(error instanceof ApiException ? { status: error.code } : {}),
              ...(error instanceof AttemptTimeout ? { timeout: true } : {}),
            }),
        });
      } catch (error) {
        if (signal?.aborted) throw abortReason();
        if (error instanceof Unauthorized && !refreshed) {
          refreshed = true;
          try {
            await refreshToken(error.generation);
          } catch (refreshError) {
            throw wrap(refreshError, operation, target);
          }
          continue;
        }
        throw error;
      }
    }
  }

  const isNotFound = (error: unknown) =>
    error instanceof KindNotServed || (error instanceof ApiException && error.code === 404);
  const parse = (text: string | undefined): unknown => (text ? JSON.parse(text) : undefined);

  async function read<T extends KubeObject>(ref: KubeRef): Promise<T | undefined> {
    const operation = `read ${ref.apiVersion} ${ref.kind}`;
    const target = describeRef(ref);
    try {
      const text = await call(operation, target, (api) =>
        api.read({
          apiVersion: ref.apiVersion,
          kind: ref.kind,
          metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) },
        }),
      );
      return parse(text) as T;
    } catch (error) {
      if (signal?.aborted) throw error;
      if (isNotFound(error)) return undefined;
      throw wrap(error, operation, target);
    }
  }

  return {
    read,

    async list<T extends KubeObject>(
      apiVersion: string,
      kind: string,
      listOptions: { namespace?: string; labelSelector?: string } = {},
    ): Promise<T[]> {
      const operation = `list ${apiVersion} ${kind}`;
      const namespace = listOptions.namespace || undefined;
      const target = describeRef({ namespace });
      const items: T[] = [];
      const seen = new Set<string>();
      let token: string | undefined;
      try {
        do {
          const from = token;
          const page = parse(
            await call(operation, target, (api) =>
              api.list(
                apiVersion,
                kind,
                namespace,
                undefined,
                undefined,
                undefined,
                undefined,
                listOptions.labelSelector || undefined,
                LIST_PAGE_SIZE,
                from,
              ),
            ),
          );
          if (!isRecord(page) || !Array.isArray(page.items)) {
            throw new CloudApiError(
              `kube ${operation}${target} on cluster ${cluster}: the answer is not a list`,
              {
                cloud: CLOUD,
                operation,
                retryable: false,
              },
            );
          }
          items.push(...(page.items as T[]));
          const next = isRecord(page.metadata) ? page.metadata.continue : undefined;
          token = typeof next === 'string' && next !== '' ? next : undefined;
          if (token !== undefined) {
            if (seen.has(token)) {
              throw new CloudApiError(
                `kube ${operation}${target} on cluster ${cluster}: the server repeated a continue token`,
                { cloud: CLOUD, operation, retryable: false },
              );
            }
            seen.add(token);
          }
        } while (token !== undefined);
      } catch (error) {
        if (signal?.aborted) throw error;
        throw wrap(error, operation, target);
      }
      return items;
    },

    async create<T extends KubeObject>(
      object: T,
      createOptions: { dryRun?: boolean } = {},
    ): Promise<{ object: T; created: boolean }> {
      const operation = `create ${object.apiVersion} ${object.kind}`;
      // The client fills in a default namespace and apiVersion in place: never in the caller's object.
      const spec = structuredClone(object);
      // Fields the server sets; a stale resourceVersion would make the create fail.
      if (spec.metadata) {
        delete spec.metadata.creationTimestamp;
        delete spec.metadata.resourceVersion;
        delete spec.metadata.uid;
      }
      const target = describeRef(spec.metadata ?? {});
      try {
        const text = await call(operation, target, (api) =>
          api.create(spec as KubernetesObject, undefined, createOptions.dryRun ? 'All' : undefined),
        );
        return { object: parse(text) as T, created: true };
      } catch (error) {
        if (signal?.aborted) throw error;
        const name = spec.metadata?.name;
        if (error instanceof ApiException && error.code === 409 && name) {
          const existing = await read<T>({
            apiVersion: spec.apiVersion,
            kind: spec.kind,
            name,
            ...(spec.metadata.namespace ? { namespace: spec.metadata.namespace } : {}),
          });
          if (existing) return { object: existing, created: false };
        }
        throw wrap(error, operation, target);
      }
    },

    async delete(ref: KubeRef): Promise<boolean> {
      const operation = `delete ${ref.apiVersion} ${ref.kind}`;
      const target = describeRef(ref);
      try {
        await call(operation, target, (api) =>
          api.delete({
            apiVersion: ref.apiVersion,
            kind: ref.kind,
            metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) },
          }),
        );
        return true;
      } catch (error) {
        if (signal?.aborted) throw error;
        if (isNotFound(error)) return false;
        throw wrap(error, operation, target);
      }
    },
  };
}

/**
 * Kubernetes RBAC rules of the client itself (shared/clouds/permissions.ts): API discovery of
 * groups not in {@link KNOWN_RESOURCES}, granted to every authenticated user by `system:discovery`.
 */
export const PERMISSIONS: readonly import('../clouds/permissions.ts').PermissionGrant[] = [
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'kube',
    permission: '/apis:get',
    calls: ['get /apis', 'get /api'],
    why: 'discover the resource names of an API group before the first call to it',
  },
];
