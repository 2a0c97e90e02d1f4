/**
 * The configured GCP projects by number ({@link ProjectDirectory}). GKE cluster notifications
 * carry the project number in their `project_id` attribute; the config and the inventory use
 * project ids.
 *
 * A project's number comes from the config (`clouds.gcp.projects[].number`) when given. The
 * numbers of the other configured projects are resolved the first time an unknown number is
 * seen, with one Cloud Resource Manager v3 `projects.get` per project
 * (`GET /v3/projects/{projectId}` answers `name: "projects/<number>"`), and cached for the
 * life of the process: a project's number never changes. Only configured projects are ever
 * looked up (permission `resourcemanager.projects.get` on them), never the number an event
 * names, so an event cannot make Fleetward probe a project it does not watch.
 *
 * Transport: plain `fetch` with a Google access token (`google-auth-library`, the
 * `credentialsFile` or application default credentials); `insecure` sends no credentials and
 * needs a loopback `resourceManagerEndpoint`. Retries (`withRetry`, `maxAttempts`) on
 * 408/429/5xx, network errors and the per-attempt `timeoutMs` deadline.
 */
import type { GcpConfig } from '../../config/schema.ts';
import type { ProjectDirectory } from '../../ports.ts';
import { CloudApiError, errorInfo } from '../../runtime/errors.ts';
import { parseRetryAfter, type RetryDecision, withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { bearerAuthorization, restBaseUrl } from './auth.ts';
import { googleErrorMessage, HttpStatusError } from './rest.ts';

const CLOUD = 'gcp';
const OPERATION = 'projects.get';
const DEFAULT_ENDPOINT = 'https://cloudresourcemanager.googleapis.com';
const READ_SCOPE = ['https://www.googleapis.com/auth/cloud-platform.read-only'];
const PROJECT_NUMBER = /^[0-9]+$/;

/** Whether `scope` is a project number (ids start with a letter, numbers are digits only). */
export function isProjectNumber(scope: string): boolean {
  return PROJECT_NUMBER.test(scope);
}

/** The base URL of Cloud Resource Manager for a config; refuses `insecure` off loopback and plain http elsewhere. */
export function resourceManagerUrl(config: GcpConfig): string {
  const endpoint = restBaseUrl(config, 'resourceManagerEndpoint', DEFAULT_ENDPOINT, 'resource manager');
  return `${endpoint.origin}${endpoint.pathname.replace(/\/+$/, '')}`;
}

function classify(error: unknown): RetryDecision {
  if (error instanceof HttpStatusError) {
    return {
      retry: error.status === 408 || error.status === 429 || error.status >= 500,
      afterMs: error.retryAfterMs,
    };
  }
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError') return { retry: true };
  return { retry: error instanceof TypeError };
}

/**
 * The configured projects of `config` by number (see the module comment). Throws
 * `ConfigError` for bad connection settings, when the first lookup is needed.
 */
export function createProjectDirectory(config: GcpConfig, ctx: AdapterContext): ProjectDirectory {
  /** project id -> number, from the config and from lookups (numbers never change). */
  const numbers = new Map<string, string>();
  for (const p of config.projects) if (p.number !== undefined) numbers.set(p.id, p.number);

  const authorization = bearerAuthorization(config, READ_SCOPE);

  const getNumber = async (projectId: string, signal: AbortSignal | undefined): Promise<string> => {
    const url = `${resourceManagerUrl(config)}/v3/projects/${encodeURIComponent(projectId)}`;
    try {
      return await withRetry(
        async () => {
          const deadline = AbortSignal.timeout(config.timeoutMs);
          const response = await fetch(url, {
            headers: { accept: 'application/json', ...(await authorization()) },
            signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
          });
          const text = await response.text();
          if (!response.ok) {
            throw new HttpStatusError(
              response.status,
              googleErrorMessage(text, response.statusText).split('\n')[0]!,
              parseRetryAfter(response.headers.get('retry-after')),
            );
          }
          const name = (JSON.parse(text) as { name?: unknown }).name;
          const number = typeof name === 'string' ? /^projects\/([0-9]+)$/.exec(name)?.[1] : undefined;
          if (!number) throw new SyntaxError('projects.get answered without a projects/<number> name');
          return number;
        },
        classify,
        {
          maxAttempts: config.maxAttempts,
          ...(signal ? { signal } : {}),
          onRetry: ({ attempt, delayMs, error }) =>
            ctx.logger.info('Call retried', {
              operation: OPERATION,
              project: projectId,
              attempt,
              delayMs,
              error: errorInfo(error),
            }),
        },
      );
    } catch (error) {
      if (error instanceof CloudApiError) throw error;
      const status = error instanceof HttpStatusError ? error.status : undefined;
      throw new CloudApiError(
        `resource manager projects.get of ${projectId}: ${error instanceof Error ? error.message : String(error)}`,
        { cloud: CLOUD, operation: OPERATION, status, retryable: classify(error).retry },
        { cause: error },
      );
    }
  };

  // One resolution at a time: concurrent events share it instead of asking twice.
  let resolving: Promise<void> | undefined;
  const resolveMissing = async (signal: AbortSignal | undefined): Promise<void> => {
    const missing = config.projects.filter((p) => !numbers.has(p.id));
    const settled = await Promise.allSettled(missing.map((p) => getNumber(p.id, signal)));
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') numbers.set(missing[i]!.id, r.value);
    });
    ctx.logger.info('Project numbers resolved', {
      projects: settled.filter((r) => r.status === 'fulfilled').length,
      failed: settled.filter((r) => r.status === 'rejected').length,
    });
    // What was resolved stays cached; a failed project is asked again on the next unknown number.
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
  };

  const lookup = (number: string): string | undefined => {
    for (const [id, n] of numbers) if (n === number) return id;
    return undefined;
  };

  return {
    async projectIdOf(number, options = {}) {
      const known = lookup(number);
      if (known !== undefined || numbers.size === config.projects.length) return known;
      resolving ??= resolveMissing(options.signal).finally(() => {
        resolving = undefined;
      });
      await resolving;
      return lookup(number);
    },
  };
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'project-directory',
    permission: 'resourcemanager.projects.get',
    calls: ['cloudresourcemanager:projects.get'],
    why: 'map a project id to its project number (cluster events and budgets name projects by number)',
  },
];
