/**
 * Discovery of clusters named by kubeconfig contexts. The file says where a cluster
 * is (its server); the config says which region and country it sits in. When
 * probing, each context's `/version` is read with the context's own credentials.
 */
import {
  ApiException,
  type Cluster as KubeCluster,
  KubeConfig,
  Observable,
  type ObservableMiddleware,
  VersionApi,
} from '@kubernetes/client-node';
import type { KubeconfigSource } from '../../config/schema.ts';
import type { DiscoveredCluster, DiscoveryOutcome, DiscoveryScope } from '../../model.ts';
import type { ClusterDiscovery } from '../../ports.ts';
import { regionCountry } from '../../residency/index.ts';
import { createLimiter, mapSettled } from '../../runtime/concurrency.ts';
import { CloudApiError, errorInfo, FleetwardError } from '../../runtime/errors.ts';
import { parseRetryAfter, withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';

const CLOUD = 'kubeconfig';
const OPERATION = 'GetVersion';
/** Contexts probed at once, across all sources. */
const PROBE_CONCURRENCY = 8;
/** Attempts of one probe when the server throttles or answers 5xx. */
const PROBE_ATTEMPTS = 3;

type KubeContextConfig = KubeconfigSource['contexts'][number];

/** A probe outcome: the version, or why there is none. */
type Probe = { version: string | null; error?: unknown };

export function createDiscovery(
  sources: KubeconfigSource[],
  ctx: AdapterContext & { probe?: boolean },
): ClusterDiscovery {
  const probe = ctx.probe ?? true;
  return {
    cloud: CLOUD,
    async discover(options = {}) {
      const { signal } = options;
      signal?.throwIfAborted();
      const limiter = createLimiter(PROBE_CONCURRENCY);
      const perSource = await Promise.all(
        sources.map((source) => discoverSource(source, { probe, limiter, signal })),
      );
      signal?.throwIfAborted();
      const outcome: DiscoveryOutcome = { clusters: [], failures: [], completedScopes: [] };
      for (const part of perSource) {
        outcome.clusters.push(...part.clusters);
        outcome.failures.push(...part.failures);
        outcome.completedScopes.push(...part.completedScopes);
      }
      for (const failure of outcome.failures) {
        ctx.logger.debug('Scope failed', {
          scope: failure.scope,
          region: failure.region,
          error: failure.error,
        });
      }
      ctx.logger.info('kubeconfig discovery finished', {
        sources: sources.length,
        clusters: outcome.clusters.length,
        failures: outcome.failures.length,
        probed: probe,
      });
      return outcome;
    },
  };
}

async function discoverSource(
  source: KubeconfigSource,
  opts: { probe: boolean; limiter: ReturnType<typeof createLimiter>; signal: AbortSignal | undefined },
): Promise<DiscoveryOutcome> {
  const outcome: DiscoveryOutcome = { clusters: [], failures: [], completedScopes: [] };
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(source.file);
  } catch (error) {
    outcome.failures.push({
      cloud: CLOUD,
      scope: source.alias,
      kind: 'scope',
      error: errorInfo(
        new FleetwardError(`cannot load kubeconfig "${source.alias}": ${describeLoadError(error)}`, {
          cause: error,
        }),
      ),
    });
    return outcome;
  }

  // Regions (of this alias) in which some context failed: not complete.
  const incomplete = new Set<string>();
  const fail = (context: KubeContextConfig, error: unknown) => {
    incomplete.add(context.region);
    outcome.failures.push({
      cloud: CLOUD,
      scope: source.alias,
      region: context.region,
      kind: 'scope',
      error: errorInfo(error),
    });
  };

  const resolved: { context: KubeContextConfig; cluster: KubeCluster }[] = [];
  for (const context of source.contexts) {
    const found = kc.getContextObject(context.name);
    const cluster = found ? kc.getCluster(found.cluster) : null;
    if (!found) {
      fail(context, new FleetwardError(`context "${context.name}" is not in kubeconfig "${source.alias}"`));
    } else if (!cluster) {
      fail(
        context,
        new FleetwardError(
          `context "${context.name}" names cluster "${found.cluster}" which kubeconfig "${source.alias}" does not define`,
        ),
      );
    } else {
      resolved.push({ context, cluster });
    }
  }

  const probes = await mapSettled(resolved, opts.limiter, async ({ context }): Promise<Probe> => {
    if (!opts.probe) return { version: null };
    try {
      return { version: await probeVersion(kc, context.name, source.timeoutMs, opts.signal) };
    } catch (error) {
      if (opts.signal?.aborted) throw error;
      return { version: null, error };
    }
  });
  opts.signal?.throwIfAborted();

  resolved.forEach(({ context, cluster }, i) => {
    const settled = probes[i]!;
    const result: Probe =
      settled.status === 'fulfilled' ? settled.value : { version: null, error: settled.reason as unknown };
    if (result.error !== undefined) fail(context, result.error);
    outcome.clusters.push(
      toCluster(source.alias, context, cluster, opts.probe && result.error === undefined, result),
    );
  });

  const regions = new Set(source.contexts.map((c) => c.region));
  for (const region of regions) {
    if (!incomplete.has(region)) {
      const scope: DiscoveryScope = { cloud: CLOUD, scope: source.alias, region };
      outcome.completedScopes.push(scope);
    }
  }
  return outcome;
}

function toCluster(
  alias: string,
  context: KubeContextConfig,
  cluster: KubeCluster,
  reachable: boolean,
  probe: Probe,
): DiscoveredCluster {
  const country =
    context.country ?? (context.cloud ? regionCountry(context.cloud, context.region) : undefined);
  return {
    id: `${CLOUD}/${alias}/${context.region}/${context.name}`,
    cloud: CLOUD,
    scope: alias,
    region: context.region,
    name: context.name,
    kubernetesVersion: probe.version,
    endpoint: cluster.server,
    endpointAccess: 'unknown',
    secretsEncryptionKey: null,
    auditLogging: null,
    tags: {},
    status: reachable ? 'running' : 'unknown',
    providerStatus: null,
    createdAt: null,
    country: country ?? null,
  };
}

/**
 * Reads `/version` through the context's credentials, aborting after `timeoutMs`.
 * @kubernetes/client-node 2 sends with undici `fetch` and takes the request's
 * `AbortSignal` from its RequestContext, so a call-time middleware sets one.
 */
async function probeVersion(
  file: KubeConfig,
  contextName: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<string> {
  // One KubeConfig per context: the client resolves the current context at request time.
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: file.getClusters(),
    users: file.getUsers(),
    contexts: file.getContexts(),
    currentContext: contextName,
  });
  const api = kc.makeApiClient(VersionApi);
  // The client builds a new undici Agent for every request and never closes it.
  const dispatchers = new Set<{ close(): Promise<void> }>();
  let info: { gitVersion?: unknown };
  try {
    info = await withRetry(
      () => {
        const callSignal = signal
          ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
          : AbortSignal.timeout(timeoutMs);
        const timeout: ObservableMiddleware = {
          pre: (request) => {
            request.setSignal(callSignal);
            const dispatcher = request.getDispatcher();
            if (dispatcher) dispatchers.add(dispatcher);
            return new Observable(Promise.resolve(request));
          },
          post: (response) => new Observable(Promise.resolve(response)),
        };
        return api.getCode({}, { middleware: [timeout], middlewareMergeStrategy: 'append' });
      },
      (error) =>
        error instanceof ApiException && (error.code === 429 || error.code >= 500)
          ? { retry: true, afterMs: parseRetryAfter(error.headers?.['retry-after']) }
          : { retry: false },
      { maxAttempts: PROBE_ATTEMPTS, baseDelayMs: 200, maxDelayMs: 2_000, signal },
    );
  } catch (error) {
    if (signal?.aborted) throw error;
    throw probeError(error, contextName, timeoutMs);
  } finally {
    for (const dispatcher of dispatchers) dispatcher.close().catch(() => {});
  }
  const gitVersion = info?.gitVersion;
  if (typeof gitVersion !== 'string' || gitVersion === '') {
    throw new CloudApiError(`context "${contextName}": the version answer has no gitVersion`, {
      cloud: CLOUD,
      operation: OPERATION,
      retryable: false,
    });
  }
  return gitVersion.replace(/^v/, '');
}

/** Wraps what the client threw in a CloudApiError whose message names the context (never a credential). */
function probeError(error: unknown, contextName: string, timeoutMs: number): CloudApiError {
  const details = (status: number | undefined, retryable: boolean) => ({
    cloud: CLOUD,
    operation: OPERATION,
    status,
    retryable,
  });
  const prefix = `context "${contextName}": get version`;
  if (error instanceof ApiException) {
    const status = error.code;
    const what =
      status === 401 ? 'unauthorized (check the credentials)' : status === 403 ? 'forbidden' : 'failed';
    const retryable = status === 429 || status >= 500;
    return new CloudApiError(`${prefix} ${what}: HTTP ${status}`, details(status, retryable), {
      cause: error,
    });
  }
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return new CloudApiError(`${prefix} timed out after ${timeoutMs} ms`, details(undefined, false), {
      cause: error,
    });
  }
  if (error instanceof SyntaxError) {
    return new CloudApiError(`${prefix}: unreadable answer (${error.message})`, details(undefined, false), {
      cause: error,
    });
  }
  const cause =
    error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const message = code ?? (error instanceof Error ? error.message : String(error));
  return new CloudApiError(`${prefix}: cannot reach the server (${message})`, details(undefined, false), {
    cause: error,
  });
}

/** Why a kubeconfig did not load, without quoting the file (it may hold credentials). */
function describeLoadError(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown; reason?: unknown; mark?: { line?: unknown } } | null;
  if (e?.code === 'ENOENT') return 'file not found';
  if (e?.code === 'EACCES') return 'permission denied';
  if (e?.code === 'EISDIR') return 'is a directory';
  if (e?.name === 'YAMLException') {
    const line = typeof e.mark?.line === 'number' ? ` at line ${e.mark.line + 1}` : '';
    return `invalid YAML: ${typeof e.reason === 'string' ? e.reason : 'syntax error'}${line}`;
  }
  if (error instanceof TypeError) return 'not a kubeconfig';
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'discovery',
    permission: '/version:get',
    calls: ['get /version'],
    why: "read each kubeconfig context's Kubernetes version (public to every authenticated user by default)",
  },
];
