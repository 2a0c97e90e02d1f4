/**
 * Assembling an adapter's `DiscoveryOutcome` from per-scope results, shared by the
 * adapters whose scope is one list call chain (GCP projects, Azure subscriptions).
 */
import type { CloudId, DiscoveredCluster, DiscoveryFailure, DiscoveryOutcome } from '../model.ts';
import type { Log } from '../ports.ts';
import { errorInfo } from '../runtime/errors.ts';

/** What listing one scope produced; `complete` only when nothing in the scope went unseen. */
export interface ScopeResult {
  clusters: DiscoveredCluster[];
  failures: DiscoveryFailure[];
  complete: boolean;
}

/**
 * Reports an unreachable endpoint once per scope: failures of one scope (cloud, scope,
 * region) whose error is the same `EndpointUnreachableError` are merged into one, without
 * the `cluster` of the per-cluster calls that hit it. Other failures stay as they are, in order.
 */
export function onePerScope(failures: readonly DiscoveryFailure[]): DiscoveryFailure[] {
  const seen = new Set<string>();
  const out: DiscoveryFailure[] = [];
  for (const failure of failures) {
    if (failure.error.name !== 'EndpointUnreachableError') {
      out.push(failure);
      continue;
    }
    const key = JSON.stringify([failure.cloud, failure.scope, failure.region ?? null, failure.error.message]);
    if (seen.has(key)) continue;
    seen.add(key);
    const { cluster: _cluster, ...scoped } = failure;
    out.push({ ...scoped, kind: 'scope' });
  }
  return out;
}

/** A scope that produced nothing but one failure. */
export function failedScope(cloud: CloudId, scope: string, error: unknown): ScopeResult {
  return {
    clusters: [],
    failures: [{ cloud, scope, kind: 'scope', error: errorInfo(error) }],
    complete: false,
  };
}

/** Merges per-scope results (in `scopes` order) and logs one summary line; failures are logged by the job. */
export function mergeScopes(
  cloud: CloudId,
  scopes: readonly string[],
  results: readonly ScopeResult[],
  logger: Log,
): DiscoveryOutcome {
  const outcome: DiscoveryOutcome = { clusters: [], failures: [], completedScopes: [] };
  results.forEach((part, i) => {
    outcome.clusters.push(...part.clusters);
    outcome.failures.push(...onePerScope(part.failures));
    if (part.complete) outcome.completedScopes.push({ cloud, scope: scopes[i]! });
  });
  logger.info('Cloud discovered', {
    cloud,
    scopes: scopes.length,
    clusters: outcome.clusters.length,
    failures: outcome.failures.length,
  });
  return outcome;
}
