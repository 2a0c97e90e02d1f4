/**
 * Names every request a fake logged as the provider permission table names calls
 * (shared/clouds/permissions.ts, `PermissionGrant.calls`): `<service>:<operation>` for the
 * clouds, `<verb> <group>/<resource>` for Kubernetes. The fakes keep logging what they log
 * (`RequestLog`, faults.ts); this one function turns an entry into a call, so the permission
 * meta test, `fleetward doctor`'s test and the deny rules of {@link FaultInjector} agree.
 */
import type { PermissionProvider } from '../../shared/clouds/permissions.ts';
import type { RequestInfo } from './faults.ts';

/** One provider call, as the grants table names it. */
export interface ProviderCall {
  provider: PermissionProvider;
  call: string;
}

/** The Google API (host prefix) of each operation the GCP fakes log. */
const GCP_SERVICE: Record<string, string> = {
  ListClusters: 'container',
  GetCluster: 'container',
  SetLabels: 'container',
  ListBudgets: 'billingbudgets',
  GetBudget: 'billingbudgets',
  CreateBudget: 'billingbudgets',
  UpdateBudget: 'billingbudgets',
  DeleteBudget: 'billingbudgets',
  'entries.list': 'logging',
  'projects.get': 'cloudresourcemanager',
};

/** `get:velero.io/v1/backups` (the Kubernetes fake's operation) as `get velero.io/backups`. */
function kubeCall(operation: string): string | undefined {
  if (operation === 'GetVersion') return 'get /version';
  if (operation === 'GetAPIVersions' || operation.startsWith('discover:v1')) return 'get /api';
  if (operation === 'GetAPIGroupList' || operation.startsWith('discover:')) return 'get /apis';
  const m = /^([a-z]+):(?:([^/]+)\/)?([^/]+)\/(.+)$/.exec(operation);
  if (!m) return undefined;
  const [, verb, group, , resource] = m;
  return group ? `${verb} ${group}/${resource}` : `${verb} ${resource}`;
}

/**
 * The provider call of a logged request, or `undefined` for one that is no provider call
 * (Slack, health probes, an operation the fake could not name).
 */
export function callOf(info: RequestInfo): ProviderCall | undefined {
  const { cloud, operation } = info;
  switch (cloud) {
    case 'aws':
      return info.service && /^[A-Z][A-Za-z0-9]+$/.test(operation)
        ? { provider: 'aws', call: `${info.service}:${operation}` }
        : undefined;
    case 'gcp': {
      if (info.service) return { provider: 'gcp', call: `${info.service}:${operation}` };
      if (/^(buckets|objects)\./.test(operation)) return { provider: 'gcp', call: `storage:${operation}` };
      const service = GCP_SERVICE[operation];
      return service ? { provider: 'gcp', call: `${service}:${operation}` } : undefined;
    }
    case 'azure':
      if (info.service) return { provider: 'azure', call: `${info.service}:${operation}` };
      if (operation === 'logAnalytics.query') return { provider: 'azure', call: 'loganalytics:query' };
      return /^[a-zA-Z]+\.[a-zA-Z]+$/.test(operation)
        ? { provider: 'azure', call: `arm:${operation}` }
        : undefined;
    case 'kube': {
      if (operation === 'GetHealth') return undefined;
      const call = kubeCall(operation);
      return call ? { provider: 'kubernetes', call } : undefined;
    }
    default:
      return undefined;
  }
}

/** Whether `info` is the call `call` of `provider` (e.g. a deny rule's target). */
export function isCall(info: RequestInfo, provider: PermissionProvider, call: string): boolean {
  const c = callOf(info);
  return c !== undefined && c.provider === provider && c.call === call;
}

/**
 * The message a provider gives when a call is refused for a missing permission, naming the
 * call as the provider names it (a real message names the IAM action or RBAC rule; the fakes
 * know only the call, so a check that names the permission must have looked it up).
 */
export function deniedMessage(info: RequestInfo): string {
  const c = callOf(info);
  const call = c?.call ?? info.operation;
  switch (info.cloud) {
    case 'aws':
      return `User: arn:aws:sts::${info.scope ?? '000000000000'}:assumed-role/fleetward-reader/fleetward is not authorized to perform: ${call} because no identity-based policy allows the ${call} action`;
    case 'gcp':
      return `The caller does not have permission (${call})`;
    case 'azure':
      return `The client 'fleetward' with object id '00000000-0000-0000-0000-000000000000' does not have authorization to perform action '${call}' over scope '${info.scope ?? '/'}' or the scope is invalid.`;
    default: {
      const [verb, target = ''] = call.split(' ');
      const [group, resource] = target.includes('/') ? target.split('/') : ['', target];
      return `${resource}${group ? `.${group}` : ''} is forbidden: User "fleetward" cannot ${verb} resource "${resource}" in API group "${group}"`;
    }
  }
}

/** A provider call the flows made, how often, and the grants that declare it (none: undeclared). */
export interface CallUse extends ProviderCall {
  count: number;
}

/**
 * The provider calls in `entries` that no grant of `grants` declares (by provider and call),
 * most frequent first. Requests that are no provider call (Slack, health probes) are skipped;
 * an AWS request the proxy could not name is reported under its raw name, so it cannot hide.
 */
export function undeclaredCalls(
  entries: readonly RequestInfo[],
  grants: readonly { provider: string; calls: readonly string[] }[],
): CallUse[] {
  const declared = new Set(grants.flatMap((g) => g.calls.map((c) => `${g.provider} ${c}`)));
  const uses = new Map<string, CallUse>();
  for (const e of entries) {
    const c = callOf(e) ?? (e.cloud === 'aws' ? { provider: 'aws' as const, call: e.operation } : undefined);
    if (!c || declared.has(`${c.provider} ${c.call}`)) continue;
    const key = `${c.provider} ${c.call}`;
    const use = uses.get(key) ?? { ...c, count: 0 };
    use.count++;
    uses.set(key, use);
  }
  return [...uses.values()].sort((a, b) => b.count - a.count || a.call.localeCompare(b.call));
}

/** The grants none of whose calls appear in `entries`. */
export function unusedGrants<G extends { provider: string; calls: readonly string[] }>(
  entries: readonly RequestInfo[],
  grants: readonly G[],
): G[] {
  const seen = new Set<string>();
  for (const e of entries) {
    const c = callOf(e);
    if (c) seen.add(`${c.provider} ${c.call}`);
  }
  return grants.filter((g) => !g.calls.some((c) => seen.has(`${g.provider} ${c}`)));
}
